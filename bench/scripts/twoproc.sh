#!/bin/bash
# Two-process perf runs: nanoport perf and nng_perf in all four combinations, and the raw
# socket floor (raw_perf on both sides). Throughput runs add `rawq`: the raw floor whose
# sender writes each frame 128 frames after building it (RAW_SEND_DEPTH=128), the distance
# the perf tools' full 128-message send buffer puts between a message's copy and its write.
# Usage: [SIZE=bytes] [ROUNDS=n] [SAME=1] twoproc.sh [PIN]
#   PIN non-empty: both processes under taskset -c 0. Without PIN: latency and throughput;
#   with PIN: latency, and throughput too when SIZE is given (a large-message stream on
#   one CPU). ROUNDS repeats the whole pass, alternating the contenders, and ends with the
#   median of each row; SAME skips the mixed nanoport/libnng pairs.
T=${CARGO_TARGET_DIR:-target}/release
NP="$T/nanoport perf"
NG="$T/examples/nng_perf"
RAW="$T/examples/raw_perf"
SIZE=${SIZE:-64}
PIN=${1:+taskset -c 0}
LAT_N=${LAT_N:-20000}
THR_N=${THR_N:-200000}
port=$((20000 + RANDOM % 20000))
# Waits until the local side listens on URL; fails if it exited first (say, the port was
# taken), so a failed bind reports itself instead of spinning here forever.
wait_ready() { # URL PID
  until case $1 in
      ipc://*) [ -S "${1#ipc://}" ] ;;
      tcp://*) ss -ltnH "sport = :${1##*:}" | grep -q . ;;
    esac; do
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.01
  done
}
run() { # kind local remote transport
  local kind=$1 lname=$2 rname=$3 tr=$4
  local L R
  pick() { case $1 in nanoport) echo "$NP" ;; libnng) echo "$NG" ;; raw) echo "$RAW" ;; rawq) echo "env RAW_SEND_DEPTH=128 $RAW" ;; esac; }
  L=$(pick $lname)
  R=$(pick $rname)
  port=$((port + 1))
  local url
  [ $tr = ipc ] && url="ipc:///tmp/npb-2p-$$-$port.sock" || url="tcp://127.0.0.1:$port"
  if [ $kind = lat ]; then
    $PIN $L local_lat $url $SIZE $LAT_N > /tmp/npb-2p-local.txt 2>&1 &
    lp=$!
    if ! wait_ready $url $lp; then
      echo "lat $tr local=$lname remote=$rname FAILED: $(cat /tmp/npb-2p-local.txt)"
      return
    fi
    out=$($PIN $R remote_lat $url $SIZE $LAT_N 2>&1)
    wait $lp
    v=$(echo "$out" | sed -n 's/average latency: \(.*\) \[us\]/\1/p')
    echo "lat $tr local=$lname remote=$rname rtt-us=$(echo "$v*2" | bc) one-way-us=$v"
  else
    $PIN $L local_thr $url $SIZE $THR_N > /tmp/npb-2p-local.txt 2>&1 &
    lp=$!
    if ! wait_ready $url $lp; then
      echo "thr $tr local=$lname remote=$rname FAILED: $(cat /tmp/npb-2p-local.txt)"
      return
    fi
    $PIN $R remote_thr $url $SIZE $THR_N > /dev/null 2>&1
    wait $lp
    v=$(sed -n 's/throughput: \(.*\) \[msg\/s\]/\1/p' /tmp/npb-2p-local.txt)
    echo "thr $tr local=$lname remote=$rname msg/s=$v"
  fi
  [ $tr = ipc ] && rm -f "${url#ipc://}"
}
pass() {
  for kind in $kinds; do
    for tr in ipc tcp; do
      for l in nanoport libnng; do for r in nanoport libnng; do
        [ -n "$SAME" ] && [ $l != $r ] && continue
        run $kind $l $r $tr
      done; done
      run $kind raw raw $tr
      [ $kind = thr ] && run $kind raw rawq $tr
    done
  done
}
uptime
kinds="lat thr"; [ -n "$PIN" ] && [ "$SIZE" = 64 ] && kinds=lat
echo "size $SIZE B"
ROUNDS=${ROUNDS:-1}
all=$(mktemp)
for round in $(seq 1 "$ROUNDS"); do
  [ "$ROUNDS" -gt 1 ] && echo "round $round"
  pass | tee -a "$all"
done
if [ "$ROUNDS" -gt 1 ]; then
  echo "medians over $ROUNDS rounds:"
  # The row's name is everything before the last field; the figure follows its '='.
  # (A latency row's rtt-us is twice its one-way figure: left out of the name.)
  grep -v FAILED "$all" |
    awk '{v=$NF; sub(/.*=/, "", v); $NF=""; sub(/ rtt-us=[^ ]*/, ""); print $0 "\t" v}' |
    sort -t $'\t' -k1,1 -k2,2g |
    awk -F'\t' '{k[$1]=k[$1] " " $2; n[$1]++}
      END {for (r in k) {split(substr(k[r], 2), a, " "); printf "%s median=%s (of %d)\n", r, a[int((n[r]+1)/2)], n[r]}}' |
    sort
fi
rm -f "$all"
uptime
