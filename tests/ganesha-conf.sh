# shellcheck shell=bash
# ganesha-conf.sh - the nfs-ganesha configuration of one stand-in mount
# target, shared by tests/ganesha.sh and bench/run-nfs.sh (sourced).
# Why each setting is there: DESIGN.md ("Facts learned on this machine").
#
#   ganesha_conf FILE EXPORT_DIR ADDR NAME RECOVERY_DIR PLUGINS_DIR [PROTOCOLS]
#
# PROTOCOLS is "4" (the default) or "3, 4"; with NFSv3, MOUNT takes the
# pseudo path (/export) as NFSv4 does, so both name the same export.
# GANESHA_SQUASH (default No_Root_Squash) is the export's Squash setting.
ganesha_conf() {
	local file=$1 dir=$2 addr=$3 name=$4 recovery=$5 plugins=$6 protocols=${7:-4}
	local mnt_pseudo=""
	[ "$protocols" = "4" ] || mnt_pseudo="Mount_Path_Pseudo = true;"
	cat >"$file" <<CONF
NFS_CORE_PARAM {
	Bind_addr = $addr;
	NFS_Port = 2049;
	Protocols = $protocols;
	$mnt_pseudo
	Enable_NLM = false;
	Enable_RQUOTA = false;
	Enable_UDP = false;
	Plugins_Dir = "$plugins";
	Dbus_Name_Prefix = "$name";
}
NFSV4 {
	Graceless = true;
	Lease_Lifetime = 10;
	RecoveryBackend = fs;
	RecoveryRoot = "$recovery";
	Minor_Versions = 0, 1, 2;
	Only_Numeric_Owners = true;
}
NFS_KRB5 { Active_krb5 = false; }
MDCACHE {
	Use_Getattr_Directory_Invalidation = true;
	Dir_Chunk = 0;
}
EXPORT {
	Export_Id = 1;
	Path = "$dir";
	Pseudo = "/export";
	Access_Type = RW;
	Squash = ${GANESHA_SQUASH:-No_Root_Squash};
	SecType = sys;
	Protocols = $protocols;
	Transports = TCP;
	Attr_Expiration_Time = 0;
	FSAL { Name = VFS; }
}
CONF
}
