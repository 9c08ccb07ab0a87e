// Placeholder replaced by the "web" part (live updates over /events).
