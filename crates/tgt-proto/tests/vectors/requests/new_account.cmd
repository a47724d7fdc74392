tgtadm -C 9 --lld iscsi --op new --mode account --user user1 --password pass1
