"""The web app: the only package that imports gradio. app.py assembles one file per tab."""
