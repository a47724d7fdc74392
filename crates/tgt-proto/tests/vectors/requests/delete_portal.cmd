tgtadm -C 9 --lld iscsi --op delete --mode portal --param portal=127.0.0.5:13265
