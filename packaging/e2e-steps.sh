#!/bin/sh
# Runs inside the Debian root booted by tests/debian_package.rs, as a boot-time unit: the
# operator's life of the package, each observation written to /e2e/facts as key=value for
# the test to check after the container powers off. /e2e/env sets SIM_URL, AK, SECRET,
# METRICS, START, BACKFILL (FROM..TO) and DEB. Never exits early: a failed step is a fact too.
. /e2e/env
facts=/e2e/facts; : > "$facts"
fact() { printf '%s=%s\n' "$1" "$2" >> "$facts"; }
# wait_for SECONDS COMMAND...: polls every half second until COMMAND succeeds.
wait_for() {
    n=$(($1 * 2)); shift
    while [ $n -gt 0 ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; n=$((n - 1)); done
    return 1
}
export DEBIAN_FRONTEND=noninteractive

# 1. Install: its Depends come from the archive (ca-certificates among them).
apt-get update -qq > /e2e/apt.log 2>&1
apt-get install -y -q "$DEB" > /e2e/install.log 2>&1; fact install_rc $?
fact install_says_not_started "$(grep -c 'installed, not started' /e2e/install.log)"
fact ca_certificates "$(dpkg-query -W -f='${Status}' ca-certificates 2>&1)"
fact user "$(getent passwd tasksync | cut -d: -f1,6,7)"
fact readers "$(getent group tasksync-readers | cut -d: -f1)"
for p in /var/lib/tasksync /var/lib/tasksync/state /var/lib/tasksync/parquet /etc/tasksync /etc/tasksync/tasksync.toml; do
    fact "mode:$p" "$(stat -c '%a %U %G' "$p" 2>&1)"
done
fact version "$(tasksync --version 2>&1)"
fact man "$(man -w tasksync 2>&1)"
for c in /usr/share/bash-completion/completions/tasksync /usr/share/zsh/vendor-completions/_tasksync \
    /usr/share/fish/vendor_completions.d/tasksync.fish; do
    fact "completion:$c" "$(grep -c tasksync "$c" 2>&1)"
done
for u in tasksync.service tasksync@example.service tasksync-backfill@2025-01-01..2025-02-01.service; do
    fact "exposure:$u" "$(systemd-analyze security --offline=true "$u" 2>&1 | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')"
    # Installed, the units' ExecStart and Documentation= (the man page) resolve: nothing to say.
    fact "verify:$u" "$(systemd-analyze verify "$u" 2>&1 | tr '\n' ' ')"
done
fact enabled_after_install "$(systemctl is-enabled tasksync.service 2>&1)"
fact active_after_install "$(systemctl is-active tasksync.service 2>&1)"

# 2. Configure as README.md ("Install") says, put the secret in place, enable and start.
conf=/etc/tasksync/tasksync.toml
sed -i -e "s|^base_url = .*|base_url = \"$SIM_URL\"|" -e "s|^access_key_id = .*|access_key_id = \"$AK\"|" \
    -e "s|^start = .*|start = \"$START\"|" -e "s|^schedule = .*|schedule = \"*/5 * * * * *\"|" \
    -e "s|^settle = .*|settle = \"1s\"|" -e "s|^listen = .*|listen = \"$METRICS\"|" "$conf"
printf '%s\n' "$SECRET" | install -m 600 /dev/stdin /etc/tasksync/secret_key
systemctl enable --now tasksync.service > /e2e/enable.log 2>&1; fact enable_rc $?
wait_for 60 sh -c '[ "$(systemctl is-active tasksync.service)" = active ]'; fact ready $?
fact first_status "$(systemctl show -p StatusText --value tasksync.service)"
wait_for 120 sh -c 'systemctl show -p StatusText --value tasksync.service | grep -q "^last pass ok"'; fact first_pass_ok $?
fact status_text "$(systemctl show -p StatusText --value tasksync.service | cut -c1-40)"
fact metrics_build_info "$(curl -s "http://$METRICS/metrics" | grep -c '^tasksync_build_info{.*commit=')"
fact metrics_passes_ok "$(curl -s "http://$METRICS/metrics" | sed -n 's/^tasksync_passes_total{result="ok"} //p')"
fact partitions "$(ls /var/lib/tasksync/parquet/tasks | wc -l)"
fact status_cmd "$(runuser -u tasksync -- tasksync status 2>&1 | grep -c '^cursor: .*behind now')"

# 3. A stop is clean and within TimeoutStopSec (40 s).
t0=$(date +%s%N); systemctl stop tasksync.service; t1=$(date +%s%N)
fact stop_ms $(((t1 - t0) / 1000000))
fact stop_result "$(systemctl show -p Result --value tasksync.service)"
systemctl start tasksync.service; wait_for 60 sh -c '[ "$(systemctl is-active tasksync.service)" = active ]'

# 4. A backfill beside the running service.
unit="tasksync-backfill@$BACKFILL.service"
systemctl start "$unit"
wait_for 180 sh -c "! systemctl is-active --quiet '$unit'"; fact backfill_ended $?
fact backfill_result "$(systemctl show -p Result --value "$unit")"
fact backfill_exit "$(systemctl show -p ExecMainStatus --value "$unit")"
fact service_beside "$(systemctl is-active tasksync.service)"

# 5. An upgrade over itself: the edited conffile kept, state and data untouched, restarted.
echo "# e2e: edited by the operator" >> "$conf"
pid_before=$(systemctl show -p MainPID --value tasksync.service)
inode_before=$(stat -c %i /var/lib/tasksync/state/state.db)
apt-get install -y -q --reinstall "$DEB" > /e2e/upgrade.log 2>&1; fact upgrade_rc $?
fact conffile_kept "$(grep -c '^# e2e: edited by the operator' "$conf")"
wait_for 60 sh -c '[ "$(systemctl is-active tasksync.service)" = active ]'
pid_after=$(systemctl show -p MainPID --value tasksync.service)
fact restarted "$([ "$pid_before" != "$pid_after" ] && [ "$pid_after" != 0 ] && echo yes || echo "no ($pid_before -> $pid_after)")"
fact state_inode_kept "$([ "$(stat -c %i /var/lib/tasksync/state/state.db)" = "$inode_before" ] && echo yes || echo no)"
wait_for 60 sh -c 'systemctl show -p StatusText --value tasksync.service | grep -q "^last pass ok"'

# 6. Remove keeps config, state and data; purge removes the config and says what stays.
apt-get remove -y -q tasksync > /e2e/remove.log 2>&1; fact remove_rc $?
fact removed_active "$(systemctl is-active tasksync.service 2>&1)"
fact removed_enabled_link "$([ -e /etc/systemd/system/multi-user.target.wants/tasksync.service ] && echo present || echo gone)"
fact removed_binary "$([ -e /usr/bin/tasksync ] && echo present || echo gone)"
for p in /etc/tasksync/tasksync.toml /etc/tasksync/secret_key /var/lib/tasksync/state/state.db /var/lib/tasksync/parquet/tasks; do
    fact "after_remove:$p" "$([ -e "$p" ] && echo present || echo gone)"
done
apt-get purge -y -q tasksync > /e2e/purge.log 2>&1; fact purge_rc $?
fact purge_says_kept "$(grep -c 'Kept: the data set' /e2e/purge.log)"
for p in /etc/tasksync /var/lib/tasksync/state/state.db /var/lib/tasksync/parquet/tasks; do
    fact "after_purge:$p" "$([ -e "$p" ] && echo present || echo gone)"
done
fact done 1
