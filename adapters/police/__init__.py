"""Police adapter: NRM referrals, Duty to Notify reports, bulk CSV and case updates."""
