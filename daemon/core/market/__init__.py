"""The volunteer render market: requesting renders and volunteering for them."""
