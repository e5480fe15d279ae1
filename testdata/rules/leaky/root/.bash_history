apt-get update
apt-get install -y vsftpd telnetd rsh-client
vi /etc/ssh/sshd_config
systemctl restart ssh
