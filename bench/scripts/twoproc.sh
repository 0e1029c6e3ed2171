#!/bin/bash
# Two-process perf runs: nanoport perf and nng_perf in all four combinations, and the raw
# socket floor (raw_perf on both sides). Throughput runs add `rawq`: the raw floor whose
# sender writes each frame 128 frames after building it (RAW_SEND_DEPTH=128), the distance
# the perf tools' full 128-message send buffer puts between a message's copy and its write.
# Usage: [SIZE=bytes] twoproc.sh [PIN]   (PIN non-empty: both processes under taskset -c 0)
# Without PIN: latency and throughput; with PIN: latency, and throughput too when SIZE is
# given (a large-message stream on one CPU).
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
    echo "lat $tr local=$lname remote=$rname one-way-us=$v rtt-us=$(echo "$v*2" | bc)"
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
uptime
kinds="lat thr"; [ -n "$PIN" ] && [ "$SIZE" = 64 ] && kinds=lat
echo "size $SIZE B"
for kind in $kinds; do
  for tr in ipc tcp; do
    for l in nanoport libnng; do for r in nanoport libnng; do run $kind $l $r $tr; done; done
    run $kind raw raw $tr
    [ $kind = thr ] && run $kind raw rawq $tr
  done
done
uptime
