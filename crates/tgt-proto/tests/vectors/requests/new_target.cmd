tgtadm -C 9 --lld iscsi --op new --mode target --tid 1 --targetname iqn.2026-12.test.vds:t1
