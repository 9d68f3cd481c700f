"""District briefings: figures (compute), email (render, mail), exactly-once sending (deliver)."""
