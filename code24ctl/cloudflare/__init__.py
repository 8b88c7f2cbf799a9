"""The Cloudflare adapter: every API call code24ctl makes, through the official SDK.

:mod:`.client` builds the SDK client and holds every API code we act on, with its hint;
:mod:`.session` is what every operation takes (account, client, pacer, policy, clock);
:mod:`.pacing` keeps bulk work under the API's budget; the rest are the resources we touch:
:mod:`.namespaces`, :mod:`.scripts` (download, read and upload Workers), :mod:`.modules`
(Worker module files and the multipart parser) and :mod:`.secrets`. Nothing here prints.
"""
