#!/usr/bin/env bash
# Download the real test data the tests read from ../shared/testdata (beside the project root): each
# file from its public source as scripts/testdata.tsv lists it, each checked against its SHA-256 there.
# The folder appears only when every file matched (it is built under a temporary name, then renamed).
#
#   scripts/fetch_testdata.sh [DEST]     DEST defaults to ../shared/testdata beside the project root
#
# SEDS_TESTDATA_BASE_URL=URL fetches from a mirror instead, laid out by source:
#   URL/github/<owner>/<repo>/<ref>/<path>   and   URL/gdrive/<file id>
# (file:///path works; any URL curl reads). A DEST that exists is verified against its SHA256SUMS, never
# overwritten. Exit 0: DEST holds every file, verified; 1: a download or a checksum failed (named).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
list="$here/testdata.tsv"
dest="${1:-$here/../../shared/testdata}"
base="${SEDS_TESTDATA_BASE_URL:-}"

if command -v sha256sum >/dev/null; then sha256() { sha256sum "$1" | cut -d' ' -f1; }
else sha256() { shasum -a 256 "$1" | cut -d' ' -f1; }; fi

url_of() {  # source location -> the URL to fetch
    if [ -n "$base" ]; then echo "${base%/}/$1/$2"; return; fi
    case "$1" in
        github) echo "https://raw.githubusercontent.com/$2" ;;
        gdrive) echo "https://drive.usercontent.google.com/download?export=download&confirm=t&id=$2" ;;
        *) echo "fetch_testdata: unknown source '$1' in $list" >&2; exit 1 ;;
    esac
}

if [ -e "$dest" ]; then
    if [ ! -f "$dest/SHA256SUMS" ]; then
        echo "fetch_testdata: $dest exists but has no SHA256SUMS; move it away and rerun" >&2
        exit 1
    fi
    bad=0
    while read -r expected path; do
        if [ ! -f "$dest/$path" ] || [ "$(sha256 "$dest/$path")" != "$expected" ]; then
            echo "fetch_testdata: $dest/${path#./} is missing or does not match SHA256SUMS" >&2
            bad=1
        fi
    done < "$dest/SHA256SUMS"
    if [ "$bad" = 0 ]; then
        echo "fetch_testdata: $dest is already here; every file matches its SHA256SUMS"
        exit 0
    fi
    echo "fetch_testdata: move $dest away and rerun to fetch it afresh" >&2
    exit 1
fi

mkdir -p "$(dirname "$dest")"
tmp="$(mktemp -d "${dest%/}.tmp-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
count=0
while IFS=$'\t' read -r path expected source location lines _licence; do
    case "$path" in ''|'#'*) continue ;; esac
    url="$(url_of "$source" "$location")"
    mkdir -p "$(dirname "$tmp/$path")"
    if ! curl -fsSL --retry 3 -o "$tmp/$path.download" "$url"; then
        echo "fetch_testdata: could not download $path from $url" >&2
        exit 1
    fi
    if [ "$lines" = "-" ]; then
        mv "$tmp/$path.download" "$tmp/$path"
    else  # an excerpt: the header and first rows of a larger file, byte for byte (CRLF kept)
        head -n "$lines" "$tmp/$path.download" > "$tmp/$path"
        rm "$tmp/$path.download"
    fi
    got="$(sha256 "$tmp/$path")"
    if [ "$got" != "$expected" ]; then
        echo "fetch_testdata: $path from $url has SHA-256 $got, expected $expected (changed upstream, or not the" \
             "file itself, e.g. an HTML error page); nothing was installed" >&2
        exit 1
    fi
    printf '%s  ./%s\n' "$got" "$path" >> "$tmp/SHA256SUMS.unsorted"
    count=$((count + 1))
done < "$list"
LC_ALL=C sort -k2 "$tmp/SHA256SUMS.unsorted" > "$tmp/SHA256SUMS"
rm "$tmp/SHA256SUMS.unsorted"
cp "$list" "$tmp/SOURCES.tsv"
mv "$tmp" "$dest"
trap - EXIT
echo "fetch_testdata: $count files verified -> $dest"
