"""code24ctl: admin toolkit for the Code24 platform on Cloudflare Workers for Platforms."""

__version__ = "0.1.0"
