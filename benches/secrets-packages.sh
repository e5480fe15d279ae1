# The packages of the secret-scanning benchmark (sourced by make-secrets-image.sh and
# make-packaged-image.sh): a typical server's plus text-heavy ones. Sets `packages`.
# Versioned names follow the archive: resolve the kernel and the toolchain's versions.
kernel=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
py=$(apt-cache depends python3 2>/dev/null | awk '/Depends: python3\.[0-9]+$/ {print $2; exit}')
py=${py:-python3.11}
perlv=$(apt-cache depends perl 2>/dev/null | awk '/Depends: perl-modules-/ {print $2; exit}')
packages=(
  "$kernel" firmware-linux-free
  "$py" "$py-minimal" "lib$py-stdlib" "lib$py-minimal" "lib$py-testsuite" python3-pip python3-setuptools
  perl perl-base "$perlv"
  gcc-12 cpp-12 g++-12 libstdc++-12-dev libgcc-12-dev libc6 libc6-dev linux-libc-dev
  golang-1.19-src
  texlive-base texlive-latex-base texlive-latex-recommended texlive-fonts-recommended
  libreoffice-core libreoffice-common
  vim-runtime git git-man openssh-client openssh-server openssl ca-certificates
  systemd coreutils util-linux bash tzdata manpages manpages-dev man-db
  apache2-bin apache2-data nginx-common postgresql-common
)
