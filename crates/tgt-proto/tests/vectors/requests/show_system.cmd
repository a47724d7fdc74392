tgtadm -C 9 --lld iscsi --op show --mode system
