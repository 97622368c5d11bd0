#!/usr/bin/env bash
# Installs the S3-compatible server the s3:// tests start on 127.0.0.1 (test/support/s3-server.ts):
# s3proxy (Apache-2.0; jclouds' filesystem backend behind a real S3 REST front end, SigV2/SigV4,
# ranged GETs, If-Match) from Maven Central with Maven, as one self-contained jar. Cached outside the
# repository by version; a no-op when warm. Prints the jar's path on stdout; progress on stderr.
#
# Why s3proxy: the fastest cold install of the candidates measured here on the shared 2-core machine
# (measured 2026-12-02): 45-86 s cold (Maven's own plugins included), versus a
# `go install` of versitygw v1.8.0 that compiles the AWS, Azure and GCP SDKs (783 s cold, under load).
# It needs a Java 17 runtime and Maven (Debian: default-jre-headless maven; .ci/run installs them).
# Env: BERTH_HOME (default ~/.cache/berth) -> $BERTH_HOME/s3proxy/<version>/s3proxy.jar.
set -euo pipefail

S3PROXY_VERSION=2.9.0
cache="${BERTH_HOME:-$HOME/.cache/berth}/s3proxy/$S3PROXY_VERSION"
jar="$cache/s3proxy.jar"
log() { echo "s3-test-server: $*" >&2; }

if [ -s "$jar" ]; then echo "$jar"; exit 0; fi

mkdir -p "$cache"
exec 9>"$cache/.install.lock"
flock 9
if [ -s "$jar" ]; then echo "$jar"; exit 0; fi

command -v java >/dev/null || { log "a Java runtime is required (apt-get install default-jre-headless)"; exit 1; }
command -v mvn >/dev/null || { log "Maven is required (apt-get install maven)"; exit 1; }
log "installing s3proxy $S3PROXY_VERSION into $cache"
started=$(date +%s)
# Maven's local repository lives in the cache too, so a warm machine never downloads its plugins again.
mvn -q -B -Dmaven.repo.local="$cache/m2" dependency:get \
  -Dartifact="org.gaul:s3proxy:$S3PROXY_VERSION:jar:jar-with-dependencies" -Dtransitive=false >&2
downloaded="$cache/m2/org/gaul/s3proxy/$S3PROXY_VERSION/s3proxy-$S3PROXY_VERSION-jar-with-dependencies.jar"
[ -s "$downloaded" ] || { log "Maven did not produce $downloaded"; exit 1; }
cp "$downloaded" "$jar.tmp" && mv "$jar.tmp" "$jar"
log "done in $(($(date +%s) - started)) s"
echo "$jar"
