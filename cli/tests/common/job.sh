# A command job for the containment tests. $1: a directory for its files; $2: what the first
# instance does at the end: "wait" (for its children) or "exit".
# Each process it leaves writes "LABEL PID STARTTIME" (proc(5) field 22) to $1/pids itself, so
# the test names each process without racing it. An instance holds an exclusive flock(1) on
# $1/lock through descriptor 9, which its children inherit: the lock is held while any process
# of that instance lives, and an instance that finds it taken writes "overlap" to the ledger.
# Later instances (a retry) only write to the ledger and exit.
d=$1
exec 9>>"$d/lock"
if ! flock -n 9; then echo "overlap $$" >> "$d/ledger"; fi
echo "start $$" >> "$d/ledger"
if [ -e "$d/first-done" ]; then echo "end $$" >> "$d/ledger"; exit 0; fi
touch "$d/first-done"
# a grandchild that leaves the session and process group, and ignores SIGTERM
setsid sh -c 'trap "" TERM; echo "gc $$ $(cut -d" " -f22 /proc/$$/stat)" >> "$0/pids"; while :; do sleep 1; done' "$d" &
sleep 600 &
echo "child $! $(cut -d' ' -f22 /proc/$!/stat)" >> "$d/pids"
echo "sh $$ $(cut -d' ' -f22 /proc/$$/stat)" >> "$d/pids"
if [ "$2" = exit ]; then
    # leave only once the grandchild is there
    while [ "$(wc -l < "$d/pids")" -lt 3 ]; do sleep 0.01; done
    exit 0
fi
wait
