#!/bin/sh
# Cross-builds the release binaries (`go tool task release`): the edge appliance,
# the operator CLI and the cloud hub for linux/amd64, linux/arm64 and linux/armv7
# (GOARM=7), static (CGO_ENABLED=0), with the version and commit embedded in
# shared/service.Version as VERSION+COMMIT, into DIST (default ./dist) as
# NAME-linux-ARCH, plus SHA256SUMS. Run from the repository root.
#
#   deploy/release.sh [DIST] [VERSION] [COMMIT]
#
# VERSION defaults to `git describe --tags --always --dirty`, COMMIT to the short
# hash of HEAD; ARCHS (environment) narrows the architectures, e.g. ARCHS=arm64,
# and BINARIES the binaries, e.g. BINARIES="voltage-edge voltage-cloud".
set -eu

dist=${1:-dist}
version=${2:-}
commit=${3:-}
[ -n "$version" ] || version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
[ -n "$commit" ] || commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
archs=${ARCHS:-amd64 arm64 armv7}
# name=package; keep in step with deploy/binaries.tsv.
all="voltage-edge=./edge/cmd/voltage-edge voltctl=./tools/cmd/voltctl voltage-cloud=./cloud/cmd/voltage-cloud"
binaries=
for b in $all; do
	case " ${BINARIES:-voltage-edge voltctl voltage-cloud} " in
	*" ${b%%=*} "*) binaries="$binaries $b" ;;
	esac
done
[ -n "$binaries" ] || { echo "release.sh: BINARIES names none of: voltage-edge voltctl voltage-cloud" >&2; exit 2; }

ldflags="-s -w -X github.com/voltageems/voltage/shared/service.Version=$version+$commit"
mkdir -p "$dist"
for arch in $archs; do
	case $arch in
	amd64 | arm64) goarch=$arch goarm= ;;
	armv7) goarch=arm goarm=7 ;;
	*) echo "release.sh: unknown architecture $arch (amd64, arm64, armv7)" >&2; exit 2 ;;
	esac
	out=$dist/.build-$arch
	rm -rf "$out"
	mkdir -p "$out"
	pkgs=
	for b in $binaries; do pkgs="$pkgs ${b#*=}"; done
	echo "release: linux/$arch $version+$commit"
	# One go build per architecture: the packages the binaries share compile once.
	# shellcheck disable=SC2086
	CGO_ENABLED=0 GOOS=linux GOARCH=$goarch GOARM=$goarm \
		go build -trimpath -ldflags "$ldflags" -o "$out/" $pkgs
	for b in $binaries; do
		name=${b%%=*}
		mv -f "$out/$name" "$dist/$name-linux-$arch"
	done
	rmdir "$out"
done
(
	cd "$dist"
	# shellcheck disable=SC2046
	sha256sum $(ls | grep -E -e '-linux-(amd64|arm64|armv7)$' | sort) >SHA256SUMS
)
echo "release: $(grep -c . "$dist/SHA256SUMS") binaries and SHA256SUMS in $dist"
