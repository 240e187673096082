#!/bin/bash
# The demo: a vault in a temp dir, mounted, showing a sensitive file that is
# ciphertext on disk and plaintext through the mount, a public source tree
# served by passthrough, a file denied to `cat`, and the audit log.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
wardfs="$root/build/wardfs"
demo=$(mktemp -d /tmp/wardfs-demo.XXXXXX)
chmod 755 "$demo"
backing="$demo/backing" mnt="$demo/home" db="$demo/audit.db"
cleanup() {
	if grep -qs " $mnt " /proc/self/mounts; then
		"$wardfs" umount "$mnt" || umount -l "$mnt"
	fi
	rm -rf "$demo"
}
trap cleanup EXIT

say() { printf '\n\033[1m# %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@" || true; }

mkdir -p "$backing" "$mnt"
chmod 700 "$backing" # only root may reach it: init and mount refuse otherwise
cat >"$demo/policy" <<'POLICY'
default public
sensitive /.ssh/**
public    /.ssh/*.pub
sensitive /.aws/credentials
deny      /.netrc
POLICY
printf 'demo passphrase\n' >"$demo/pass"
chmod 600 "$demo/pass"

say "create a vault (the recovery key is printed once)"
show "$wardfs" init --passfile "$demo/pass" --policy "$demo/policy" "$backing"

say "mount it"
show "$wardfs" mount --passfile "$demo/pass" --policy "$demo/policy" --audit-db "$db" \
	--log "$demo/wardfs.log" "$backing" "$mnt"

say "live in it: an ssh key, a source tree, aws credentials"
mkdir -p "$mnt/.ssh" "$mnt/src" "$mnt/.aws"
printf -- '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA...demo...\n-----END OPENSSH PRIVATE KEY-----\n' >"$mnt/.ssh/id_ed25519"
printf 'ssh-ed25519 AAAAC3Nza...demo alice@example\n' >"$mnt/.ssh/id_ed25519.pub"
printf '#include <stdio.h>\nint main(void) { puts("hello from src/"); return 0; }\n' >"$mnt/src/main.c"
printf '[default]\naws_secret_access_key = demo/EXAMPLEKEY\n' >"$mnt/.aws/credentials"
show "$wardfs" policy explain --policy "$demo/policy" /.ssh/id_ed25519 /.ssh/id_ed25519.pub /src/main.c /.aws/credentials /.netrc

say ".ssh/id_ed25519 through the mount: plaintext"
show cat "$mnt/.ssh/id_ed25519"
say ".ssh/id_ed25519 on disk: ciphertext (header, then sealed blocks)"
show sh -c "head -c 160 '$backing/.ssh/id_ed25519' | od -A d -c | head -6"

say "src/ is plain on disk and served by passthrough: the daemon serves no reads"
before=$("$wardfs" status "$mnt" | sed -n 's/^reads-served: //p')
show cat "$mnt/src/main.c"
show cmp "$mnt/src/main.c" "$backing/src/main.c"
after=$("$wardfs" status "$mnt" | sed -n 's/^reads-served: //p')
echo "daemon-served reads before: $before, after: $after"

say "an admin narrows .aws/credentials to the aws program; the mount reloads the policy"
echo "sensitive /.aws/credentials allow-exe=/usr/local/bin/aws" >>"$demo/policy"
sleep 2
show cat "$mnt/.aws/credentials"
show sh -c "echo 'machine example.com password hunter2' > '$mnt/.netrc'"

say "status"
show "$wardfs" status "$mnt"

say "unmount (drains the audit log, wipes the keys)"
show "$wardfs" umount "$mnt"

say "who opened what: wardfs audit query"
show "$wardfs" audit query --db "$db" --format table --limit 40
say "wardfs audit stats"
show "$wardfs" audit stats --db "$db"
say "wardfs audit verify"
show "$wardfs" audit verify --db "$db"
