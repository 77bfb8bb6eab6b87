"""Amphora images: root filesystems built from Debian packages (``build``), kept in a
local store with tags (``store``), and which amphorae run which image (``usage``).

Upstream builds a VM image with diskimage-builder and tags it in Glance; here an image
is a root filesystem tarball under ``<state_path>/images/``, and a tag
(``[controller_worker] amp_image_tag`` or a flavor's ``amp_image_tag``) picks the newest
image carrying it for each new amphora, as upstream's Glance lookup does.
"""
