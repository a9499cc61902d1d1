"""Flow records: collect (nfcapd), normalize (nfdump), catalog by service, check a switchover."""
