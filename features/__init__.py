"""Bank tables, their validation, the synthetic bank generator, point-in-time features and labels."""
