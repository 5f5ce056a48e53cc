#!/bin/bash
# set-keys.sh SRC.toml DEST.toml [KEY=VALUE ...]: DEST is a copy of SRC with each KEY set to VALUE: a key SRC has is
# replaced where it stands, another is added at the end (in the recipe's tomls that is the [opt] table, the last).
set -e
cp "$1" "$2"
D=$2; shift 2
for kv in "$@"; do
  k=${kv%%=*} v=${kv#*=}
  if grep -q "^$k *=" "$D"; then sed -i "s/^$k *=.*/$k = $v/" "$D"; else echo "$k = $v" >> "$D"; fi
done
