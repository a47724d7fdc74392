tgtadm -C 9 --lld iscsi --op new --mode portal --param portal=[::1]:13265
