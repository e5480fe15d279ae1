# ~/.profile: executed by Bourne-compatible login shells.
mesg n 2> /dev/null || true
