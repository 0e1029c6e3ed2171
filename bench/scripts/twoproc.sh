#!/bin/bash
# Two-process perf runs: nanoport perf and nng_perf in all four combinations.
# Usage: twoproc.sh [PIN]   (PIN non-empty: both processes under taskset -c 0; latency only)
T=${CARGO_TARGET_DIR:-target}/release
NP="$T/nanoport perf"
NG="$T/examples/nng_perf"
PIN=${1:+taskset -c 0}
LAT_N=${LAT_N:-20000}
THR_N=${THR_N:-200000}
port=$((20000 + RANDOM % 20000))
wait_ready() { # URL
  case $1 in
    ipc://*) until [ -S "${1#ipc://}" ]; do sleep 0.01; done ;;
    tcp://*) until ss -ltnH "sport = :${1##*:}" | grep -q .; do sleep 0.01; done ;;
  esac
}
run() { # kind local remote transport
  local kind=$1 lname=$2 rname=$3 tr=$4
  local L R
  [ $lname = nanoport ] && L="$NP" || L="$NG"
  [ $rname = nanoport ] && R="$NP" || R="$NG"
  port=$((port + 1))
  local url
  [ $tr = ipc ] && url="ipc:///tmp/npb-2p-$$-$port.sock" || url="tcp://127.0.0.1:$port"
  if [ $kind = lat ]; then
    $PIN $L local_lat $url 64 $LAT_N > /tmp/npb-2p-local.txt 2>&1 &
    lp=$!
    wait_ready $url
    out=$($PIN $R remote_lat $url 64 $LAT_N 2>&1)
    wait $lp
    v=$(echo "$out" | sed -n 's/average latency: \(.*\) \[us\]/\1/p')
    echo "lat $tr local=$lname remote=$rname one-way-us=$v rtt-us=$(echo "$v*2" | bc)"
  else
    $L local_thr $url 64 $THR_N > /tmp/npb-2p-local.txt 2>&1 &
    lp=$!
    wait_ready $url
    $R remote_thr $url 64 $THR_N > /dev/null 2>&1
    wait $lp
    v=$(sed -n 's/throughput: \(.*\) \[msg\/s\]/\1/p' /tmp/npb-2p-local.txt)
    echo "thr $tr local=$lname remote=$rname msg/s=$v"
  fi
  [ $tr = ipc ] && rm -f "${url#ipc://}"
}
uptime
kinds="lat thr"; [ -n "$PIN" ] && kinds=lat
for kind in $kinds; do
  for tr in ipc tcp; do
    for l in nanoport libnng; do for r in nanoport libnng; do run $kind $l $r $tr; done; done
  done
done
uptime
