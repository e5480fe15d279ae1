#!/bin/sh
set -e
apt-get install -y vsftpd
