"""The catalogue's use cases: referencing (``apps``), the OAuth 2 authorisation server (``oauth``), the
person's connected apps (``connections``); ``labels`` holds the words of their history entries."""
