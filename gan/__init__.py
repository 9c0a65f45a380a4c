"""GAN Live engine: everything but the UI. Never imports streamlit."""
