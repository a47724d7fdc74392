tgtadm -C 9 --lld iscsi --op update --mode sys --name State --value offline
