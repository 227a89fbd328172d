"""Several real ``artdag daemon`` processes working together on 127.0.0.1."""
