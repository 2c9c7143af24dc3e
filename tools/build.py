#!/usr/bin/env python3
"""Build the engine tier's tools from the Go module proxy, pinned by wrapper modules under tools/.

Each folder ``tools/<name>/`` is a Go wrapper module (``go.mod`` + ``go.sum``, committed) and a
``tool.json`` manifest saying which packages to build, at which version, with which ldflags. A tool
is built into ``${MLOPS_TOOLS_CACHE:-$HOME/.cache/mlops-platform/tools}/<name>-<version>-<hash>/``,
where ``<hash>`` is a short digest of the wrapper's go.mod, go.sum and tool.json: a changed pin is a
new folder, an unchanged one is reused (a warm run takes seconds). Binaries never enter the clone.

Usage::

    python3 tools/build.py [NAME ...] [--json] [--print-path BINARY] [--list]

Standard library only: CI runs it before any virtual environment exists.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

TOOLS_DIR = Path(__file__).resolve().parent
STAMP = "build.json"


@dataclass
class Build:
    """One ``go build`` of one package into one binary.

    Attributes:
        package: Import path of the main package, resolvable in the wrapper module's build list.
        binary: File name of the binary in the tool's cache folder.
        ldflags: ``-ldflags`` value; ``{version}`` and friends are substituted from the manifest.
        tags: Build tags.
        cgo: Whether cgo is on (off by default: static binaries, no C toolchain needed).
    """

    package: str
    binary: str
    ldflags: str = ""
    tags: list[str] = field(default_factory=list)
    cgo: bool = False


@dataclass
class CopyFile:
    """A file shipped inside a Go module that a binary needs next to it.

    Attributes:
        module: Module path (in the wrapper's build list) holding the file.
        path: Path of the file inside that module.
        dest: File name in the tool's cache folder.
    """

    module: str
    path: str
    dest: str


@dataclass
class Tool:
    """A wrapper module under tools/ and what it builds."""

    name: str
    version: str
    directory: Path
    builds: list[Build]
    copies: list[CopyFile]
    prepare: str | None
    variables: dict[str, str]

    @property
    def digest(self) -> str:
        """Short digest of the pinned inputs: go.mod, go.sum and tool.json."""
        h = hashlib.sha256()
        for name in ("go.mod", "go.sum", "tool.json"):
            h.update(name.encode() + b"\0")
            h.update((self.directory / name).read_bytes())
            h.update(b"\0")
        return h.hexdigest()[:12]

    def cache_dir(self, root: Path) -> Path:
        """The tool's build folder under the cache root."""
        return root / f"{self.name}-{self.version}-{self.digest}"

    def binaries(self) -> list[str]:
        """Every file the tool puts in its folder."""
        return [b.binary for b in self.builds] + [c.dest for c in self.copies]


def cache_root() -> Path:
    """The tools cache: ``$MLOPS_TOOLS_CACHE`` or ``~/.cache/mlops-platform/tools``."""
    env = os.environ.get("MLOPS_TOOLS_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    return Path.home() / ".cache" / "mlops-platform" / "tools"


def load_tools() -> dict[str, Tool]:
    """Read every ``tools/*/tool.json``."""
    tools: dict[str, Tool] = {}
    for manifest in sorted(TOOLS_DIR.glob("*/tool.json")):
        data = json.loads(manifest.read_text())
        directory = manifest.parent
        variables = {k: str(v) for k, v in data.get("variables", {}).items()}
        variables.setdefault("version", data["version"])
        tools[directory.name] = Tool(
            name=directory.name,
            version=data["version"],
            directory=directory,
            builds=[Build(**b) for b in data["builds"]],
            copies=[CopyFile(**c) for c in data.get("copies", [])],
            prepare=data.get("prepare"),
            variables=variables,
        )
    return tools


def go_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for the Go client: the module proxy and checksum database, never a newer toolchain."""
    env = dict(os.environ)
    # GOTOOLCHAIN=local: a wrapper needing a newer Go must fail, not fetch a toolchain binary.
    env["GOTOOLCHAIN"] = "local"
    # The committed go.sum is the pin: refuse to edit it during a build.
    env["GOFLAGS"] = "-mod=readonly -buildvcs=false"
    env.setdefault("GOPROXY", "https://proxy.golang.org,direct")
    if extra:
        env.update(extra)
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> None:
    """Run one command, appending its output to ``log``; raise with the log's tail on failure."""
    with log.open("a") as fh:
        fh.write(f"$ (cd {cwd} && {' '.join(cmd)})\n")
        fh.flush()
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-30:])
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {proc.returncode}) in {cwd}; log {log}:\n{tail}")


def module_dir(module: str, cwd: Path, env: dict[str, str], log: Path) -> Path:
    """Download ``module`` at the version the wrapper pins and return its (read-only) folder."""
    run(["go", "mod", "download", module], cwd, env, log)
    out = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", module],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


def prepare_pulumi_kubernetes(tool: Tool, work: Path, env: dict[str, str], log: Path) -> None:
    """Generate the provider's embedded schema in a temporary copy of the provider module.

    ``cmd/pulumi-resource-kubernetes/main.go`` embeds ``schema-embed.json``, which the module zip
    does not carry; upstream generates it from the committed ``schema.json`` with ``generate.go``
    (pulumi/pulumi-kubernetes provider/cmd/pulumi-resource-kubernetes/generate.go). We do that in a
    writable copy and point the temporary wrapper at the copy with a directory replace.
    """
    module = "github.com/pulumi/pulumi-kubernetes/provider/v4"
    src = module_dir(module, work, env, log)
    copy = work / "provider"
    shutil.copytree(src, copy, symlinks=True)
    for path in [copy, *copy.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o200)
    gen_dir = copy / "cmd" / "pulumi-resource-kubernetes"
    # The provider's go.mod replaces sdk/v4 with ../sdk, a folder the module zip lacks; generate.go
    # needs only pulumi/pkg/v3 codegen, so drop that replace in the copy. -mod=mod lets the Go client
    # add the sums it needs, verified against the checksum database (GOSUMDB), as ordinary.
    run(["go", "mod", "edit", "-dropreplace=github.com/pulumi/pulumi-kubernetes/sdk/v4"], copy, env, log)
    gen_env = dict(env, VERSION=tool.variables["app_version"], GOFLAGS="-mod=mod -buildvcs=false")
    # generate.go (`//go:build ignore`) reads schema.json and writes schema-embed.json and
    # terraform-mapping-embed.json, both embedded by main.go.
    run(["go", "run", "generate.go"], gen_dir, gen_env, log)
    if not (gen_dir / "schema-embed.json").is_file():
        raise RuntimeError(f"generate.go did not write {gen_dir / 'schema-embed.json'}; log {log}")
    run(["go", "mod", "edit", f"-replace={module}={copy}"], work, env, log)


PREPARE = {"pulumi-kubernetes": prepare_pulumi_kubernetes}


def build_tool(tool: Tool, root: Path) -> tuple[str, float, Path]:
    """Build ``tool`` into its cache folder unless already there.

    Returns:
        ("built" or "cached", seconds spent, the tool's folder).
    """
    final = tool.cache_dir(root)
    if (final / STAMP).is_file() and all((final / b).exists() for b in tool.binaries()):
        return "cached", 0.0, final
    root.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    work = Path(tempfile.mkdtemp(prefix=f"mlops-tools-{tool.name}-"))
    log = root / f"{final.name}.log"
    log.write_text("")
    try:
        # Build from a temporary copy of the wrapper so a prepare step may add a directory replace
        # without touching the committed go.mod.
        for name in ("go.mod", "go.sum"):
            shutil.copy2(tool.directory / name, work / name)
        env = go_env()
        if tool.prepare:
            PREPARE[tool.prepare](tool, work, env, log)
        for b in tool.builds:
            cmd = ["go", "build", "-trimpath", "-o", str(staging / b.binary)]
            if b.tags:
                cmd += ["-tags", ",".join(b.tags)]
            if b.ldflags:
                cmd += ["-ldflags", b.ldflags.format(**tool.variables)]
            cmd.append(b.package)
            run(cmd, work, go_env({"CGO_ENABLED": "1" if b.cgo else "0"}), log)
        for c in tool.copies:
            src = module_dir(c.module, work, env, log) / c.path
            shutil.copyfile(src, staging / c.dest)
            (staging / c.dest).chmod(0o755)
        seconds = time.monotonic() - start
        stamp = {
            "tool": tool.name,
            "version": tool.version,
            "digest": tool.digest,
            "seconds": round(seconds, 1),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "go": go_version(),
            "binaries": tool.binaries(),
        }
        (staging / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
        return "built", seconds, final
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def go_version() -> str:
    """``go version`` of the toolchain that built the tools."""
    return subprocess.run(["go", "version"], capture_output=True, text=True, check=False).stdout.strip()


def find_binary(tools: dict[str, Tool], name: str) -> Tool:
    """The tool that provides binary (or tool) ``name``."""
    if name in tools:
        return tools[name]
    for tool in tools.values():
        if name in tool.binaries():
            return tool
    known = sorted({b for t in tools.values() for b in t.binaries()} | set(tools))
    raise SystemExit(f"build.py: unknown tool or binary {name!r}; known: {', '.join(known)}")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="tools to build (default: all)")
    parser.add_argument("--json", action="store_true", help="print JSON: each tool's folder and binaries")
    parser.add_argument("--print-path", metavar="BINARY", help="print BINARY's path (build if missing)")
    parser.add_argument("--list", action="store_true", help="list tools and their versions, build nothing")
    args = parser.parse_args(argv)
    # SIGTERM (a cancelled CI job) unwinds like Ctrl-C, so half-built folders are removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    tools = load_tools()
    root = cache_root()
    if args.list:
        for tool in tools.values():
            print(f"{tool.name}\t{tool.version}\t{', '.join(tool.binaries())}")
        return 0
    if args.print_path:
        tool = find_binary(tools, args.print_path)
        _, _, folder = build_tool(tool, root)
        binary = args.print_path if args.print_path in tool.binaries() else tool.binaries()[0]
        print(folder / binary)
        return 0

    selected = [find_binary(tools, n) for n in args.names] if args.names else list(tools.values())
    results = []
    total = time.monotonic()
    failed = False
    for tool in selected:
        if not args.json:
            print(f"build.py: {tool.name} {tool.version} ...", file=sys.stderr, flush=True)
        try:
            status, seconds, folder = build_tool(tool, root)
        except RuntimeError as exc:
            print(f"build.py: {tool.name} {tool.version}: {exc}", file=sys.stderr)
            failed = True
            results.append({"tool": tool.name, "version": tool.version, "status": "failed"})
            continue
        results.append(
            {
                "tool": tool.name,
                "version": tool.version,
                "status": status,
                "seconds": round(seconds, 1),
                "path": str(folder),
                "binaries": {b: str(folder / b) for b in tool.binaries()},
            }
        )
    elapsed = time.monotonic() - total
    if args.json:
        print(json.dumps({"cache": str(root), "seconds": round(elapsed, 1), "tools": results}, indent=2))
    else:
        width = max([len(r["tool"]) for r in results] + [4])
        print(f"{'tool':<{width}}  {'version':<40}  {'seconds':>8}  status")
        for r in results:
            print(f"{r['tool']:<{width}}  {r['version']:<40}  {r.get('seconds', 0):>8.1f}  {r['status']}")
        print(f"{'total':<{width}}  {'':<40}  {elapsed:>8.1f}  (cache {root})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
