tgtadm -C 9 --lld iscsi --op unbind --mode target --tid 1 --initiator-address ALL
