tgtadm -C 9 --lld iscsi --op bind --mode account --user user1
