tgtadm -C 9 --lld iscsi --op bind --mode account --tid 1 --user user1 --outgoing
