tgtadm -C 9 --lld iscsi --op delete --force --mode target --tid 1
