"""SeaweedFS 4.34 (the bundled artifact store and the bucket Job's `weed shell`)."""

from __future__ import annotations

from upstream_facts import Fact

FACTS = [
    Fact(
        key="seaweedfs.grpc_port_offset",
        statement="Without an explicit gRPC port, a SeaweedFS server's gRPC address is its HTTP port + 10000",
        source="seaweedfs/seaweedfs weed/pb/grpc_client_server.go@4.34",
        value=10000,
    ),
    Fact(
        key="seaweedfs.shell_talks_grpc_to_master_and_filer",
        statement="`weed shell` connects to the masters given by -master and to the filer given by -filer "
        "(or one the master lists) over gRPC; bucket creation is a filer CreateEntry call",
        source="seaweedfs/seaweedfs weed/command/shell.go@4.34",
        value=("master", "filer"),
    ),
    Fact(
        key="seaweedfs.server.default_ports",
        statement="`weed server` listens on master 9333, filer 8888, volume 8080 and S3 8333 by default",
        source="seaweedfs/seaweedfs weed/command/server.go@4.34",
        value={"master": 9333, "filer": 8888, "volume": 8080, "s3": 8333},
    ),
    Fact(
        key="seaweedfs.server.volume_max_default",
        statement="`weed server -volume.max` defaults to 8 volumes, whatever the disk size (0 would mean "
        "free disk space divided by the volume size)",
        source="seaweedfs/seaweedfs weed/command/server.go@4.34",
        value=8,
    ),
    Fact(
        key="seaweedfs.server.s3_starts_filer",
        statement="`weed server -s3` also starts the filer (the S3 gateway stores through it)",
        source="seaweedfs/seaweedfs weed/command/server.go@4.34",
        value=True,
    ),
    Fact(
        key="seaweedfs.volume_size_limit_unit",
        statement="-master.volumeSizeLimitMB counts MiB (the master multiplies it by 1024*1024)",
        source="seaweedfs/seaweedfs weed/server/master_server.go@4.34",
        value=2**20,
    ),
]
