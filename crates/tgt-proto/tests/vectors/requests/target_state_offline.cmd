tgtadm -C 9 --lld iscsi --op update --mode target --tid 1 --name state --value offline
