tgtadm -C 9 --lld iscsi --op update --mode sys --name iSNSServerIP --value 127.0.0.1
