tgtadm -C 9 --lld iscsi --op unbind --mode account --user user1
