tgtadm -C 9 --lld iscsi --op bind --mode target --tid 1 --initiator-address ALL
