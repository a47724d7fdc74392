tgtadm -C 9 --lld iscsi --op bind --mode target --tid 1 --initiator-address 10.0.0.0/8
