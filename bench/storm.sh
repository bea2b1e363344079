#!/bin/sh
# A fork storm: P parallel shells, each running /bin/true N times.
P=${1:-2}; N=${2:-2000}
i=0
while [ $i -lt "$P" ]; do
	( j=0; while [ $j -lt "$N" ]; do /bin/true; j=$((j+1)); done ) &
	i=$((i+1))
done
wait
