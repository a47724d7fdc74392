tgtadm -C 9 --lld iscsi --op delete --mode account --user user1
