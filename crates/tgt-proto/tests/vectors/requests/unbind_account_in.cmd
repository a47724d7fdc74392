tgtadm -C 9 --lld iscsi --op unbind --mode account --tid 1 --user user1
