tgtadm -C 9 --lld iscsi --op delete --mode target --tid 1
