"""rclone (the Seldon agent's downloader): the S3 remote's options our config sets."""

from __future__ import annotations

from upstream_facts import Fact

FACTS = [
    Fact(
        key="rclone.s3_region_option",
        statement=(
            "An rclone s3 remote takes the bucket's region as the option region (left blank for S3 clones "
            "without regions); requests are signed for it"
        ),
        source="rclone/rclone docs/content/s3.md@9b8ca042016f1bd95d543a0c2256e4e33ed0451f",
        value="region",
    ),
]
