#!/bin/sh
# A shell pipeline with cd, relative and .. paths, a rename and an unlink.
# Usage: pipeline.sh DIR
set -e
cd "$1"
mkdir -p src out
cd src
echo "hello world" > input.txt
cat input.txt | tr a-z A-Z | sort > ../out/upper.txt
cd ../out
mv upper.txt ../src/../out/final.txt
wc -c final.txt > count.txt
rm count.txt
