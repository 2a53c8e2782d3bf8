#!/bin/bash
# usage: cpurun.sh CMD...   prints wall and the CPU seconds of every descendant java process
"$@" > /tmp/cpurun.out 2>&1 &
top=$!
declare -A cpu
start=$(date +%s.%N)
while kill -0 $top 2>/dev/null; do
  for p in $(pgrep -P $top) $(pgrep -P $(pgrep -P $top | tr '\n' ',' | sed 's/,$//') 2>/dev/null); do
    if [ -r /proc/$p/stat ] && grep -q java /proc/$p/comm 2>/dev/null; then
      s=$(awk '{print $14+$15}' /proc/$p/stat); cpu[$p]=$s
    fi
  done
  sleep 0.5
done
end=$(date +%s.%N)
tot=0; for p in "${!cpu[@]}"; do tot=$((tot + ${cpu[$p]})); done
grep -E "finished" /tmp/cpurun.out
echo "wall $(echo "$end - $start" | bc) s, java cpu $(echo "scale=1; $tot / $(getconf CLK_TCK)" | bc) s"
