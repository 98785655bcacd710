"""Head office's central administration (issue 16): configuration authoring and signed
publishing (attendant PINs, earning rules, tiers, messages, reward catalog), the monthly
close with station settlement, and their audit trail."""
