"""Driver layer: data model, URIs, transports and drivers. Never imports Textual."""
