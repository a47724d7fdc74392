tgtadm -C 9 --lld iscsi --op unbind --mode target --tid 1 --initiator-name iqn.2026-12.test.vds:init
