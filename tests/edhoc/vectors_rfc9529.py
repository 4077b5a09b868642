"""RFC 9529 ("Traces of EDHOC") test vectors, copied from the RFC text.

Source: RFC 9529, Section 2 (trace 1: method 0, suite 0, X.509 certificates by x5t) and Section 3
(trace 2: method 3, suite 2 after a suite negotiation, CCS by kid), and Section 4 (invalid
messages). Keys are the labels the RFC prints, e.g. "TH_2 (Raw Value)"; a label repeated in one
trace gets " #2". Generated once from the RFC text; the tests never read the RFC itself.
"""

from __future__ import annotations

TRACE_1: dict[str, bytes] = {
    "METHOD (CBOR Data Item)": bytes.fromhex("00"),
    "SUITES_I (CBOR Data Item)": bytes.fromhex("00"),
    "X (Raw Value)": bytes.fromhex(
        "892ec28e5cb6669108470539500b705e60d008d347c5817ee9f3327c8a87bb03"
    ),
    "G_X (Raw Value)": bytes.fromhex(
        "31f82c7b5b9cbbf0f194d913cc12ef1532d328ef32632a4881a1c0701e237f04"
    ),
    "G_X (CBOR Data Item)": bytes.fromhex(
        "582031f82c7b5b9cbbf0f194d913cc12ef1532d328ef32632a4881a1c0701e237f04"
    ),
    "C_I (Raw Value)": bytes.fromhex("2d"),
    "C_I (CBOR Data Item)": bytes.fromhex("2d"),
    "EAD_1 (CBOR Sequence)": bytes.fromhex(""),
    "message_1 (CBOR Sequence)": bytes.fromhex(
        "0000582031f82c7b5b9cbbf0f194d913cc12ef1532d328ef32632a4881a1c0701e237f042d"
    ),
    "Y (Raw Value)": bytes.fromhex(
        "e69c23fbf81bc435942446837fe827bf206c8fa10a39db47449e5a813421e1e8"
    ),
    "G_Y (Raw Value)": bytes.fromhex(
        "dc88d2d51da5ed67fc4616356bc8ca74ef9ebe8b387e623a360ba480b9b29d1c"
    ),
    "G_Y (CBOR Data Item)": bytes.fromhex(
        "5820dc88d2d51da5ed67fc4616356bc8ca74ef9ebe8b387e623a360ba480b9b29d1c"
    ),
    "C_R (Raw Value)": bytes.fromhex("18"),
    "C_R (CBOR Data Item)": bytes.fromhex("4118"),
    "H(message_1) (Raw Value)": bytes.fromhex(
        "c165d6a99d1bcafaac8dbf2b352a6f7d71a30b439c9d64d349a23848038ed16b"
    ),
    "H(message_1) (CBOR Data Item)": bytes.fromhex(
        "5820c165d6a99d1bcafaac8dbf2b352a6f7d71a30b439c9d64d349a23848038ed16b"
    ),
    "Input to calculate TH_2 (CBOR Sequence)": bytes.fromhex(
        "5820dc88d2d51da5ed67fc4616356bc8ca74ef9ebe8b387e623a360ba480b9b29d1c5820c165d6a9"
        "9d1bcafaac8dbf2b352a6f7d71a30b439c9d64d349a23848038ed16b"
    ),
    "TH_2 (Raw Value)": bytes.fromhex(
        "c6405c154c567466ab1df20369500e540e9f14bd3a796a0652cae66c9061688d"
    ),
    "TH_2 (CBOR Data Item)": bytes.fromhex(
        "5820c6405c154c567466ab1df20369500e540e9f14bd3a796a0652cae66c9061688d"
    ),
    "G_XY (Raw Value) (ECDH shared secret)": bytes.fromhex(
        "e5cdf3a986cdac5b7bf04691e2b07c08e71f53998d8f842b7c3fb4d839cf7b28"
    ),
    "salt (Raw Value)": bytes.fromhex(
        "c6405c154c567466ab1df20369500e540e9f14bd3a796a0652cae66c9061688d"
    ),
    "PRK_2e (Raw Value)": bytes.fromhex(
        "d584ac2e5dad5a77d14b53ebe72ef1d5daa8860d399373bf2c240afa7ba804da"
    ),
    "SK_R (Raw Value)": bytes.fromhex(
        "ef140ff900b0ab03f0c08d879cbbd4b31ea71e6e7ee7ffcb7e7955777a332799"
    ),
    "PK_R (Raw Value)": bytes.fromhex(
        "a1db47b95184854ad12a0c1a354e418aace33aa0f2c662c00b3ac55de92f9359"
    ),
    "PRK_3e2m (Raw Value)": bytes.fromhex(
        "d584ac2e5dad5a77d14b53ebe72ef1d5daa8860d399373bf2c240afa7ba804da"
    ),
    "ID_CRED_R (CBOR Data Item)": bytes.fromhex("a11822822e4879f2a41b510c1f9b"),
    "CRED_R (Raw Value)": bytes.fromhex(
        "3081ee3081a1a003020102020462319ec4300506032b6570301d311b301906035504030c12454448"
        "4f4320526f6f742045643235353139301e170d3232303331363038323433365a170d323931323331"
        "3233303030305a30223120301e06035504030c174544484f4320526573706f6e6465722045643235"
        "353139302a300506032b6570032100a1db47b95184854ad12a0c1a354e418aace33aa0f2c662c00b"
        "3ac55de92f9359300506032b6570034100b723bc01eab0928e8b2b6c98de19cc3823d46e7d6987b0"
        "32478fecfaf14537a1af14cc8be829c6b73044101837eb4abc949565d86dce51cfae52ab82c152cb"
        "02"
    ),
    "CRED_R (CBOR Data Item)": bytes.fromhex(
        "58f13081ee3081a1a003020102020462319ec4300506032b6570301d311b301906035504030c1245"
        "44484f4320526f6f742045643235353139301e170d3232303331363038323433365a170d32393132"
        "33313233303030305a30223120301e06035504030c174544484f4320526573706f6e646572204564"
        "3235353139302a300506032b6570032100a1db47b95184854ad12a0c1a354e418aace33aa0f2c662"
        "c00b3ac55de92f9359300506032b6570034100b723bc01eab0928e8b2b6c98de19cc3823d46e7d69"
        "87b032478fecfaf14537a1af14cc8be829c6b73044101837eb4abc949565d86dce51cfae52ab82c1"
        "52cb02"
    ),
    "EAD_2 (CBOR Sequence)": bytes.fromhex(""),
    "context_2 (CBOR Sequence)": bytes.fromhex(
        "4118a11822822e4879f2a41b510c1f9b5820c6405c154c567466ab1df20369500e540e9f14bd3a79"
        "6a0652cae66c9061688d58f13081ee3081a1a003020102020462319ec4300506032b6570301d311b"
        "301906035504030c124544484f4320526f6f742045643235353139301e170d323230333136303832"
        "3433365a170d3239313233313233303030305a30223120301e06035504030c174544484f43205265"
        "73706f6e6465722045643235353139302a300506032b6570032100a1db47b95184854ad12a0c1a35"
        "4e418aace33aa0f2c662c00b3ac55de92f9359300506032b6570034100b723bc01eab0928e8b2b6c"
        "98de19cc3823d46e7d6987b032478fecfaf14537a1af14cc8be829c6b73044101837eb4abc949565"
        "d86dce51cfae52ab82c152cb02"
    ),
    "context_2 (CBOR byte string)": bytes.fromhex(
        "5901254118a11822822e4879f2a41b510c1f9b5820c6405c154c567466ab1df20369500e540e9f14"
        "bd3a796a0652cae66c9061688d58f13081ee3081a1a003020102020462319ec4300506032b657030"
        "1d311b301906035504030c124544484f4320526f6f742045643235353139301e170d323230333136"
        "3038323433365a170d3239313233313233303030305a30223120301e06035504030c174544484f43"
        "20526573706f6e6465722045643235353139302a300506032b6570032100a1db47b95184854ad12a"
        "0c1a354e418aace33aa0f2c662c00b3ac55de92f9359300506032b6570034100b723bc01eab0928e"
        "8b2b6c98de19cc3823d46e7d6987b032478fecfaf14537a1af14cc8be829c6b73044101837eb4abc"
        "949565d86dce51cfae52ab82c152cb02"
    ),
    "info for MAC_2 (CBOR Sequence)": bytes.fromhex(
        "025901254118a11822822e4879f2a41b510c1f9b5820c6405c154c567466ab1df20369500e540e9f"
        "14bd3a796a0652cae66c9061688d58f13081ee3081a1a003020102020462319ec4300506032b6570"
        "301d311b301906035504030c124544484f4320526f6f742045643235353139301e170d3232303331"
        "363038323433365a170d3239313233313233303030305a30223120301e06035504030c174544484f"
        "4320526573706f6e6465722045643235353139302a300506032b6570032100a1db47b95184854ad1"
        "2a0c1a354e418aace33aa0f2c662c00b3ac55de92f9359300506032b6570034100b723bc01eab092"
        "8e8b2b6c98de19cc3823d46e7d6987b032478fecfaf14537a1af14cc8be829c6b73044101837eb4a"
        "bc949565d86dce51cfae52ab82c152cb021820"
    ),
    "MAC_2 (Raw Value)": bytes.fromhex(
        "862a7e5ef147f9a5f4c512e1b6623cd66cd17a7272072bfe5b602ffe307ee0e9"
    ),
    "MAC_2 (CBOR Data Item)": bytes.fromhex(
        "5820862a7e5ef147f9a5f4c512e1b6623cd66cd17a7272072bfe5b602ffe307ee0e9"
    ),
    "Message to be signed 2 (CBOR Data Item)": bytes.fromhex(
        "846a5369676e6174757265314ea11822822e4879f2a41b510c1f9b5901155820c6405c154c567466"
        "ab1df20369500e540e9f14bd3a796a0652cae66c9061688d58f13081ee3081a1a003020102020462"
        "319ec4300506032b6570301d311b301906035504030c124544484f4320526f6f7420456432353531"
        "39301e170d3232303331363038323433365a170d3239313233313233303030305a30223120301e06"
        "035504030c174544484f4320526573706f6e6465722045643235353139302a300506032b65700321"
        "00a1db47b95184854ad12a0c1a354e418aace33aa0f2c662c00b3ac55de92f9359300506032b6570"
        "034100b723bc01eab0928e8b2b6c98de19cc3823d46e7d6987b032478fecfaf14537a1af14cc8be8"
        "29c6b73044101837eb4abc949565d86dce51cfae52ab82c152cb025820862a7e5ef147f9a5f4c512"
        "e1b6623cd66cd17a7272072bfe5b602ffe307ee0e9"
    ),
    "Signature_or_MAC_2 (Raw Value)": bytes.fromhex(
        "c3b5bd44d1e44a085c03d3aede4e1e6c11c572a1968cc3629b505f98c681608d3d1de793d1c40eb5"
        "dd5d89acf1966aea07022b48cdc99870ebc40374e8fa6e09"
    ),
    "Signature_or_MAC_2 (CBOR Data Item)": bytes.fromhex(
        "5840c3b5bd44d1e44a085c03d3aede4e1e6c11c572a1968cc3629b505f98c681608d3d1de793d1c4"
        "0eb5dd5d89acf1966aea07022b48cdc99870ebc40374e8fa6e09"
    ),
    "PLAINTEXT_2 (CBOR Sequence)": bytes.fromhex(
        "4118a11822822e4879f2a41b510c1f9b5840c3b5bd44d1e44a085c03d3aede4e1e6c11c572a1968c"
        "c3629b505f98c681608d3d1de793d1c40eb5dd5d89acf1966aea07022b48cdc99870ebc40374e8fa"
        "6e09"
    ),
    "info for KEYSTREAM_2 (CBOR Sequence)": bytes.fromhex(
        "005820c6405c154c567466ab1df20369500e540e9f14bd3a796a0652cae66c9061688d1852"
    ),
    "KEYSTREAM_2 (Raw Value)": bytes.fromhex(
        "fd3e7c3f2d6bee643d3c9d2f2847035d73e2ecb0f8db5cd1c6854e24896af21188b2c4344e689ec2"
        "984283d9fbc69ce1c5db10dcfff24df9a49a04a94058277bc7fa9ad6c6b194ab328b445eb080490c"
        "d786"
    ),
    "CIPHERTEXT_2 (Raw Value)": bytes.fromhex(
        "bc26dd270fe9c02c44ce3934794b1cc62ba22f05459f8d358c8d12275ac42c5f96ded5f13cc9084e"
        "5b201889a45e5a60a5562dc118619c3daa2fd9f4c9f4d6edad109dd4edf95962aafbaf9ab3f4a1f6"
        "b98f"
    ),
    "message_2 (CBOR Sequence)": bytes.fromhex(
        "5872dc88d2d51da5ed67fc4616356bc8ca74ef9ebe8b387e623a360ba480b9b29d1cbc26dd270fe9"
        "c02c44ce3934794b1cc62ba22f05459f8d358c8d12275ac42c5f96ded5f13cc9084e5b201889a45e"
        "5a60a5562dc118619c3daa2fd9f4c9f4d6edad109dd4edf95962aafbaf9ab3f4a1f6b98f"
    ),
    "SK_I (Raw Value)": bytes.fromhex(
        "4c5b25878f507c6b9dae68fbd4fd3ff997533db0af00b25d324ea28e6c213bc8"
    ),
    "PK_I (Raw Value)": bytes.fromhex(
        "ed06a8ae61a829ba5fa54525c9d07f48dd44a302f43e0f23d8cc20b73085141e"
    ),
    "PRK_4e3m (Raw Value)": bytes.fromhex(
        "d584ac2e5dad5a77d14b53ebe72ef1d5daa8860d399373bf2c240afa7ba804da"
    ),
    "Input to calculate TH_3 (CBOR Sequence)": bytes.fromhex(
        "5820c6405c154c567466ab1df20369500e540e9f14bd3a796a0652cae66c9061688d4118a1182282"
        "2e4879f2a41b510c1f9b5840c3b5bd44d1e44a085c03d3aede4e1e6c11c572a1968cc3629b505f98"
        "c681608d3d1de793d1c40eb5dd5d89acf1966aea07022b48cdc99870ebc40374e8fa6e0958f13081"
        "ee3081a1a003020102020462319ec4300506032b6570301d311b301906035504030c124544484f43"
        "20526f6f742045643235353139301e170d3232303331363038323433365a170d3239313233313233"
        "303030305a30223120301e06035504030c174544484f4320526573706f6e64657220456432353531"
        "39302a300506032b6570032100a1db47b95184854ad12a0c1a354e418aace33aa0f2c662c00b3ac5"
        "5de92f9359300506032b6570034100b723bc01eab0928e8b2b6c98de19cc3823d46e7d6987b03247"
        "8fecfaf14537a1af14cc8be829c6b73044101837eb4abc949565d86dce51cfae52ab82c152cb02"
    ),
    "TH_3 (Raw Value)": bytes.fromhex(
        "5b7df9b4f58f240ce0418e48191b5fff3a22b5ca57f669b16777996592e928bc"
    ),
    "TH_3 (CBOR Data Item)": bytes.fromhex(
        "58205b7df9b4f58f240ce0418e48191b5fff3a22b5ca57f669b16777996592e928bc"
    ),
    "ID_CRED_I (CBOR Data Item)": bytes.fromhex("a11822822e48c24ab2fd7643c79f"),
    "CRED_I (Raw Value)": bytes.fromhex(
        "3081ee3081a1a003020102020462319ea0300506032b6570301d311b301906035504030c12454448"
        "4f4320526f6f742045643235353139301e170d3232303331363038323430305a170d323931323331"
        "3233303030305a30223120301e06035504030c174544484f4320496e69746961746f722045643235"
        "353139302a300506032b6570032100ed06a8ae61a829ba5fa54525c9d07f48dd44a302f43e0f23d8"
        "cc20b73085141e300506032b6570034100521241d8b3a770996bcfc9b9ead4e7e0a1c0db353a3bdf"
        "2910b39275ae48b756015981850d27db6734e37f67212267dd05eeff27b9e7a813fa574b72a00b43"
        "0b"
    ),
    "CRED_I (CBOR Data Item)": bytes.fromhex(
        "58f13081ee3081a1a003020102020462319ea0300506032b6570301d311b301906035504030c1245"
        "44484f4320526f6f742045643235353139301e170d3232303331363038323430305a170d32393132"
        "33313233303030305a30223120301e06035504030c174544484f4320496e69746961746f72204564"
        "3235353139302a300506032b6570032100ed06a8ae61a829ba5fa54525c9d07f48dd44a302f43e0f"
        "23d8cc20b73085141e300506032b6570034100521241d8b3a770996bcfc9b9ead4e7e0a1c0db353a"
        "3bdf2910b39275ae48b756015981850d27db6734e37f67212267dd05eeff27b9e7a813fa574b72a0"
        "0b430b"
    ),
    "EAD_3 (CBOR Sequence)": bytes.fromhex(""),
    "context_3 (CBOR Sequence)": bytes.fromhex(
        "a11822822e48c24ab2fd7643c79f58205b7df9b4f58f240ce0418e48191b5fff3a22b5ca57f669b1"
        "6777996592e928bc58f13081ee3081a1a003020102020462319ea0300506032b6570301d311b3019"
        "06035504030c124544484f4320526f6f742045643235353139301e170d3232303331363038323430"
        "305a170d3239313233313233303030305a30223120301e06035504030c174544484f4320496e6974"
        "6961746f722045643235353139302a300506032b6570032100ed06a8ae61a829ba5fa54525c9d07f"
        "48dd44a302f43e0f23d8cc20b73085141e300506032b6570034100521241d8b3a770996bcfc9b9ea"
        "d4e7e0a1c0db353a3bdf2910b39275ae48b756015981850d27db6734e37f67212267dd05eeff27b9"
        "e7a813fa574b72a00b430b"
    ),
    "context_3 (CBOR byte string)": bytes.fromhex(
        "590123a11822822e48c24ab2fd7643c79f58205b7df9b4f58f240ce0418e48191b5fff3a22b5ca57"
        "f669b16777996592e928bc58f13081ee3081a1a003020102020462319ea0300506032b6570301d31"
        "1b301906035504030c124544484f4320526f6f742045643235353139301e170d3232303331363038"
        "323430305a170d3239313233313233303030305a30223120301e06035504030c174544484f432049"
        "6e69746961746f722045643235353139302a300506032b6570032100ed06a8ae61a829ba5fa54525"
        "c9d07f48dd44a302f43e0f23d8cc20b73085141e300506032b6570034100521241d8b3a770996bcf"
        "c9b9ead4e7e0a1c0db353a3bdf2910b39275ae48b756015981850d27db6734e37f67212267dd05ee"
        "ff27b9e7a813fa574b72a00b430b"
    ),
    "info for MAC_3 (CBOR Sequence)": bytes.fromhex(
        "06590123a11822822e48c24ab2fd7643c79f58205b7df9b4f58f240ce0418e48191b5fff3a22b5ca"
        "57f669b16777996592e928bc58f13081ee3081a1a003020102020462319ea0300506032b6570301d"
        "311b301906035504030c124544484f4320526f6f742045643235353139301e170d32323033313630"
        "38323430305a170d3239313233313233303030305a30223120301e06035504030c174544484f4320"
        "496e69746961746f722045643235353139302a300506032b6570032100ed06a8ae61a829ba5fa545"
        "25c9d07f48dd44a302f43e0f23d8cc20b73085141e300506032b6570034100521241d8b3a770996b"
        "cfc9b9ead4e7e0a1c0db353a3bdf2910b39275ae48b756015981850d27db6734e37f67212267dd05"
        "eeff27b9e7a813fa574b72a00b430b1820"
    ),
    "MAC_3 (Raw Value)": bytes.fromhex(
        "39b127c130129afa30618c751329e637cc3734270d4b01258445a8ee02daa3bd"
    ),
    "Message to be signed 3 (CBOR Data Item)": bytes.fromhex(
        "846a5369676e6174757265314ea11822822e48c24ab2fd7643c79f59011558205b7df9b4f58f240c"
        "e0418e48191b5fff3a22b5ca57f669b16777996592e928bc58f13081ee3081a1a003020102020462"
        "319ea0300506032b6570301d311b301906035504030c124544484f4320526f6f7420456432353531"
        "39301e170d3232303331363038323430305a170d3239313233313233303030305a30223120301e06"
        "035504030c174544484f4320496e69746961746f722045643235353139302a300506032b65700321"
        "00ed06a8ae61a829ba5fa54525c9d07f48dd44a302f43e0f23d8cc20b73085141e300506032b6570"
        "034100521241d8b3a770996bcfc9b9ead4e7e0a1c0db353a3bdf2910b39275ae48b756015981850d"
        "27db6734e37f67212267dd05eeff27b9e7a813fa574b72a00b430b582039b127c130129afa30618c"
        "751329e637cc3734270d4b01258445a8ee02daa3bd"
    ),
    "Signature_or_MAC_3 (Raw Value)": bytes.fromhex(
        "96e1cd5fceadfac1b5af819443f70924f5719955957fd02655beb4775e1a73186a0d1d3ea683f08f"
        "8d03dcecb9cf154e1c6f555a1e12ca118ce42bdba6878907"
    ),
    "Signature_or_MAC_3 (CBOR Data Item)": bytes.fromhex(
        "584096e1cd5fceadfac1b5af819443f70924f5719955957fd02655beb4775e1a73186a0d1d3ea683"
        "f08f8d03dcecb9cf154e1c6f555a1e12ca118ce42bdba6878907"
    ),
    "PLAINTEXT_3 (CBOR Sequence)": bytes.fromhex(
        "a11822822e48c24ab2fd7643c79f584096e1cd5fceadfac1b5af819443f70924f5719955957fd026"
        "55beb4775e1a73186a0d1d3ea683f08f8d03dcecb9cf154e1c6f555a1e12ca118ce42bdba6878907"
    ),
    "A_3 (CBOR Data Item)": bytes.fromhex(
        "8368456e6372797074304058205b7df9b4f58f240ce0418e48191b5fff3a22b5ca57f669b16777996592e928bc"
    ),
    "info for K_3 (CBOR Sequence)": bytes.fromhex(
        "0358205b7df9b4f58f240ce0418e48191b5fff3a22b5ca57f669b16777996592e928bc10"
    ),
    "K_3 (Raw Value)": bytes.fromhex("da195e5f648ac63b0e8fb0c455205139"),
    "info for IV_3 (CBOR Sequence)": bytes.fromhex(
        "0458205b7df9b4f58f240ce0418e48191b5fff3a22b5ca57f669b16777996592e928bc0d"
    ),
    "IV_3 (Raw Value)": bytes.fromhex("38d8c64c56255affa449f4bed7"),
    "CIPHERTEXT_3 (Raw Value)": bytes.fromhex(
        "25c345884aaaeb22c527f9b1d2b6787207e0163c69b62a0d43928150427203c31674e4514ea6e383"
        "b566eb29763efeb0afa518776ae1c65f856d84bf32af3a7836970466dcb71f76745d39d3025e7703"
        "e0c032ebad51947c"
    ),
    "message_3 (CBOR Sequence)": bytes.fromhex(
        "585825c345884aaaeb22c527f9b1d2b6787207e0163c69b62a0d43928150427203c31674e4514ea6"
        "e383b566eb29763efeb0afa518776ae1c65f856d84bf32af3a7836970466dcb71f76745d39d3025e"
        "7703e0c032ebad51947c"
    ),
    "Input to calculate TH_4 (CBOR Sequence)": bytes.fromhex(
        "58205b7df9b4f58f240ce0418e48191b5fff3a22b5ca57f669b16777996592e928bca11822822e48"
        "c24ab2fd7643c79f584096e1cd5fceadfac1b5af819443f70924f5719955957fd02655beb4775e1a"
        "73186a0d1d3ea683f08f8d03dcecb9cf154e1c6f555a1e12ca118ce42bdba687890758f13081ee30"
        "81a1a003020102020462319ea0300506032b6570301d311b301906035504030c124544484f432052"
        "6f6f742045643235353139301e170d3232303331363038323430305a170d32393132333132333030"
        "30305a30223120301e06035504030c174544484f4320496e69746961746f72204564323535313930"
        "2a300506032b6570032100ed06a8ae61a829ba5fa54525c9d07f48dd44a302f43e0f23d8cc20b730"
        "85141e300506032b6570034100521241d8b3a770996bcfc9b9ead4e7e0a1c0db353a3bdf2910b392"
        "75ae48b756015981850d27db6734e37f67212267dd05eeff27b9e7a813fa574b72a00b430b"
    ),
    "TH_4 (Raw Value)": bytes.fromhex(
        "0eb868f263cf3555dccd396dd8dec29d3750d599be42d5a41a5a37c896f294ac"
    ),
    "TH_4 (CBOR Data Item)": bytes.fromhex(
        "58200eb868f263cf3555dccd396dd8dec29d3750d599be42d5a41a5a37c896f294ac"
    ),
    "EAD_4 (CBOR Sequence)": bytes.fromhex(""),
    "PLAINTEXT_4 (CBOR Sequence)": bytes.fromhex(""),
    "A_4 (CBOR Data Item)": bytes.fromhex(
        "8368456e6372797074304058200eb868f263cf3555dccd396dd8dec29d3750d599be42d5a41a5a37c896f294ac"
    ),
    "info for K_4 (CBOR Sequence)": bytes.fromhex(
        "0858200eb868f263cf3555dccd396dd8dec29d3750d599be42d5a41a5a37c896f294ac10"
    ),
    "K_4 (Raw Value)": bytes.fromhex("df8cb5861e1fdfedd3b23015a39d1e2e"),
    "info for IV_4 (CBOR Sequence)": bytes.fromhex(
        "0958200eb868f263cf3555dccd396dd8dec29d3750d599be42d5a41a5a37c896f294ac0d"
    ),
    "IV_4 (Raw Value)": bytes.fromhex("128ec658d970d7380f74fc6c27"),
    "CIPHERTEXT_4": bytes.fromhex("4f0edee366e5c883"),
    "message_4 (CBOR Sequence)": bytes.fromhex("484f0edee366e5c883"),
    "info for PRK_out (CBOR Sequence)": bytes.fromhex(
        "0758200eb868f263cf3555dccd396dd8dec29d3750d599be42d5a41a5a37c896f294ac1820"
    ),
    "PRK_out (Raw Value)": bytes.fromhex(
        "b744cb7d8a87cc0447c3350e165b250dab12ec453325abb922b30307e5c368f0"
    ),
    "info for PRK_exporter (CBOR Sequence)": bytes.fromhex("0a401820"),
    "PRK_exporter (Raw Value)": bytes.fromhex(
        "2aaec8fc4ab3bc3295def6b551051a2fa561424db301fa84f642f5578a6df51a"
    ),
    "Client's OSCORE Sender ID (Raw Value)": bytes.fromhex("18"),
    "Server's OSCORE Sender ID (Raw Value)": bytes.fromhex("2d"),
    "info for OSCORE Master Secret (CBOR Sequence)": bytes.fromhex("004010"),
    "OSCORE Master Secret (Raw Value)": bytes.fromhex("1e1c6beac3a8a1cac435de7e2f9ae7ff"),
    "info for OSCORE Master Salt (CBOR Sequence)": bytes.fromhex("014008"),
    "OSCORE Master Salt (Raw Value)": bytes.fromhex("ce7ab844c0106d73"),
    "context for KeyUpdate (Raw Value)": bytes.fromhex("d6be169602b8bceaa01158fdb820890c"),
    "context for KeyUpdate (CBOR Data Item)": bytes.fromhex("50d6be169602b8bceaa01158fdb820890c"),
    "PRK_out after KeyUpdate (Raw Value)": bytes.fromhex(
        "da6eacd9a985f4fba9aec2a9299022976b25b14e89fa159794f28d82faf2daad"
    ),
    "PRK_exporter after KeyUpdate (Raw Value)": bytes.fromhex(
        "0014d2525ee0d8e213ea5908028e9a1ce9a01c30546f0930c044d38db5362c05"
    ),
    "OSCORE Master Secret after KeyUpdate (Raw Value)": bytes.fromhex(
        "ee0ff542c47eb0e09c69307649bdbbe5"
    ),
    "OSCORE Master Salt after KeyUpdate (Raw Value)": bytes.fromhex("80cede2a1e5aab48"),
}

TRACE_2: dict[str, bytes] = {
    "METHOD (CBOR Data Item)": bytes.fromhex("03"),
    "SUITES_I (CBOR Data Item)": bytes.fromhex("06"),
    "X (Raw Value)": bytes.fromhex(
        "5c4172aca8b82b5a62e66f722216f5a10f72aa69f42c1d1cd3ccd7bfd29ca4e9"
    ),
    "G_X (Raw Value)": bytes.fromhex(
        "741a13d7ba048fbb615e94386aa3b61bea5b3d8f65f32620b749bee8d278efa9"
    ),
    "G_X (CBOR Data Item)": bytes.fromhex(
        "5820741a13d7ba048fbb615e94386aa3b61bea5b3d8f65f32620b749bee8d278efa9"
    ),
    "C_I (Raw Value)": bytes.fromhex("0e"),
    "C_I (CBOR Data Item)": bytes.fromhex("0e"),
    "EAD_1 (CBOR Sequence)": bytes.fromhex(""),
    "message_1 (CBOR Sequence)": bytes.fromhex(
        "03065820741a13d7ba048fbb615e94386aa3b61bea5b3d8f65f32620b749bee8d278efa90e"
    ),
    "error (CBOR Sequence)": bytes.fromhex("0202"),
    "METHOD (CBOR Data Item) #2": bytes.fromhex("03"),
    "SUITES_I (CBOR Data Item) #2": bytes.fromhex("820602"),
    "X (Raw Value) #2": bytes.fromhex(
        "368ec1f69aeb659ba37d5a8d45b21bdc0299dceaa8ef235f3ca42ce3530f9525"
    ),
    "G_X (Raw Value) #2": bytes.fromhex(
        "8af6f430ebe18d34184017a9a11bf511c8dff8f834730b96c1b7c8dbca2fc3b6"
    ),
    "G_X y (Raw Value)": bytes.fromhex(
        "51e8af6c6edb781601ad1d9c5fa8bf7aa15716c7c06a5d038503c614ff80c9b3"
    ),
    "G_X (CBOR Data Item) #2": bytes.fromhex(
        "58208af6f430ebe18d34184017a9a11bf511c8dff8f834730b96c1b7c8dbca2fc3b6"
    ),
    "C_I (Raw Value) #2": bytes.fromhex("37"),
    "C_I (CBOR Data Item) #2": bytes.fromhex("37"),
    "EAD_1 (CBOR Sequence) #2": bytes.fromhex(""),
    "message_1 (CBOR Sequence) #2": bytes.fromhex(
        "0382060258208af6f430ebe18d34184017a9a11bf511c8dff8f834730b96c1b7c8dbca2fc3b637"
    ),
    "Y (Raw Value)": bytes.fromhex(
        "e2f4126777205e853b437d6eaca1e1f753cdcc3e2c69fa884b0a1a640977e418"
    ),
    "G_Y (Raw Value)": bytes.fromhex(
        "419701d7f00a26c2dc587a36dd752549f33763c893422c8ea0f955a13a4ff5d5"
    ),
    "G_Y y (Raw Value)": bytes.fromhex(
        "5e4f0dd8a3da0baa16b9d3ad56a0c1860a940af85914915e25019b402417e99d"
    ),
    "G_Y (CBOR Data Item)": bytes.fromhex(
        "5820419701d7f00a26c2dc587a36dd752549f33763c893422c8ea0f955a13a4ff5d5"
    ),
    "C_R (raw value)": bytes.fromhex("27"),
    "C_R (CBOR Data Item)": bytes.fromhex("27"),
    "H(message_1) (Raw Value)": bytes.fromhex(
        "ca02cabda5a8902749b42f711050bb4dbd52153e87527594b39f50cdf019888c"
    ),
    "H(message_1) (CBOR Data Item)": bytes.fromhex(
        "5820ca02cabda5a8902749b42f711050bb4dbd52153e87527594b39f50cdf019888c"
    ),
    "Input to calculate TH_2 (CBOR Sequence)": bytes.fromhex(
        "5820419701d7f00a26c2dc587a36dd752549f33763c893422c8ea0f955a13a4ff5d55820ca02cabd"
        "a5a8902749b42f711050bb4dbd52153e87527594b39f50cdf019888c"
    ),
    "TH_2 (Raw Value)": bytes.fromhex(
        "356efd53771425e008f3fe3a86c83ff4c6b16e57028ff39d5236c182b202084b"
    ),
    "TH_2 (CBOR Data Item)": bytes.fromhex(
        "5820356efd53771425e008f3fe3a86c83ff4c6b16e57028ff39d5236c182b202084b"
    ),
    "G_XY (Raw Value) (ECDH shared secret)": bytes.fromhex(
        "2f0cb7e860ba538fbf5c8bded009f6259b4b628fe1eb7dbe9378e5ecf7a824ba"
    ),
    "salt (Raw Value)": bytes.fromhex(
        "356efd53771425e008f3fe3a86c83ff4c6b16e57028ff39d5236c182b202084b"
    ),
    "PRK_2e (Raw Value)": bytes.fromhex(
        "5aa0d69f3e3d1e0c479f0b8a486690c9802630c3466b1dc92371c982563170b5"
    ),
    "SK_R (Raw Value)": bytes.fromhex(
        "72cc4761dbd4c78f758931aa589d348d1ef874a7e303ede2f140dcf3e6aa4aac"
    ),
    "PK_R x (Raw Value)": bytes.fromhex(
        "bbc34960526ea4d32e940cad2a234148ddc21791a12afbcbac93622046dd44f0"
    ),
    "PK_R y (Raw Value)": bytes.fromhex(
        "4519e257236b2a0ce2023f0931f1f386ca7afda64fcde0108c224c51eabf6072"
    ),
    "info for SALT_3e2m (CBOR Sequence)": bytes.fromhex(
        "015820356efd53771425e008f3fe3a86c83ff4c6b16e57028ff39d5236c182b202084b1820"
    ),
    "SALT_3e2m (Raw Value)": bytes.fromhex(
        "af4e103a47cb3cf32570d5c25ad27732bd8d8178e9a69d061c31a27f8e3ca926"
    ),
    "G_RX (Raw Value) (ECDH shared secret)": bytes.fromhex(
        "f2b6eea02220b95eee5a0bc701f074e00a843ea02422f60825fb269b3e161423"
    ),
    "PRK_3e2m (Raw Value)": bytes.fromhex(
        "0ca3d3398296b3c03900987620c11f6fce70781c1d1219720f9ec08c122d8434"
    ),
    "ID_CRED_R (CBOR Data Item)": bytes.fromhex("a1044132"),
    "CRED_R (CBOR Data Item)": bytes.fromhex(
        "a2026b6578616d706c652e65647508a101a501020241322001215820bbc34960526ea4d32e940cad"
        "2a234148ddc21791a12afbcbac93622046dd44f02258204519e257236b2a0ce2023f0931f1f386ca"
        "7afda64fcde0108c224c51eabf6072"
    ),
    "EAD_2 (CBOR Sequence)": bytes.fromhex(""),
    "context_2 (CBOR Sequence)": bytes.fromhex(
        "27a10441325820356efd53771425e008f3fe3a86c83ff4c6b16e57028ff39d5236c182b202084ba2"
        "026b6578616d706c652e65647508a101a501020241322001215820bbc34960526ea4d32e940cad2a"
        "234148ddc21791a12afbcbac93622046dd44f02258204519e257236b2a0ce2023f0931f1f386ca7a"
        "fda64fcde0108c224c51eabf6072"
    ),
    "context_2 (CBOR byte string)": bytes.fromhex(
        "588627a10441325820356efd53771425e008f3fe3a86c83ff4c6b16e57028ff39d5236c182b20208"
        "4ba2026b6578616d706c652e65647508a101a501020241322001215820bbc34960526ea4d32e940c"
        "ad2a234148ddc21791a12afbcbac93622046dd44f02258204519e257236b2a0ce2023f0931f1f386"
        "ca7afda64fcde0108c224c51eabf6072"
    ),
    "info for MAC_2 (CBOR Sequence)": bytes.fromhex(
        "02588627a10441325820356efd53771425e008f3fe3a86c83ff4c6b16e57028ff39d5236c182b202"
        "084ba2026b6578616d706c652e65647508a101a501020241322001215820bbc34960526ea4d32e94"
        "0cad2a234148ddc21791a12afbcbac93622046dd44f02258204519e257236b2a0ce2023f0931f1f3"
        "86ca7afda64fcde0108c224c51eabf607208"
    ),
    "MAC_2 (Raw Value)": bytes.fromhex("0943305c899f5c54"),
    "MAC_2 (CBOR Data Item)": bytes.fromhex("480943305c899f5c54"),
    "Signature_or_MAC_2 (Raw Value)": bytes.fromhex("0943305c899f5c54"),
    "Signature_or_MAC_2 (CBOR Data Item)": bytes.fromhex("480943305c899f5c54"),
    "PLAINTEXT_2 (CBOR Sequence)": bytes.fromhex("2732480943305c899f5c54"),
    "info for KEYSTREAM_2 (CBOR Sequence)": bytes.fromhex(
        "005820356efd53771425e008f3fe3a86c83ff4c6b16e57028ff39d5236c182b202084b0b"
    ),
    "KEYSTREAM_2 (Raw Value)": bytes.fromhex("bf50e9e7bad0bb68173399"),
    "CIPHERTEXT_2 (Raw Value)": bytes.fromhex("9862a1eef9e0e7e1886fcd"),
    "message_2 (CBOR Sequence)": bytes.fromhex(
        "582b419701d7f00a26c2dc587a36dd752549f33763c893422c8ea0f955a13a4ff5d59862a1eef9e0e7e1886fcd"
    ),
    "Input to calculate TH_3 (CBOR Sequence)": bytes.fromhex(
        "5820356efd53771425e008f3fe3a86c83ff4c6b16e57028ff39d5236c182b202084b273248094330"
        "5c899f5c54a2026b6578616d706c652e65647508a101a501020241322001215820bbc34960526ea4"
        "d32e940cad2a234148ddc21791a12afbcbac93622046dd44f02258204519e257236b2a0ce2023f09"
        "31f1f386ca7afda64fcde0108c224c51eabf6072"
    ),
    "TH_3 (Raw Value)": bytes.fromhex(
        "adaf67a78a4bcc91e018f8882762a722000b2507039df0bc1bbf0c161bb3155c"
    ),
    "TH_3 (CBOR Data Item)": bytes.fromhex(
        "5820adaf67a78a4bcc91e018f8882762a722000b2507039df0bc1bbf0c161bb3155c"
    ),
    "SK_I (Raw Value)": bytes.fromhex(
        "fb13adeb6518cee5f88417660841142e830a81fe334380a953406a1305e8706b"
    ),
    "PK_I x (Raw Value)": bytes.fromhex(
        "ac75e9ece3e50bfc8ed60399889522405c47bf16df96660a41298cb4307f7eb6"
    ),
    "PK_I y (Raw Value)": bytes.fromhex(
        "6e5de611388a4b8a8211334ac7d37ecb52a387d257e6db3c2a93df21ff3affc8"
    ),
    "info for SALT_4e3m (CBOR Sequence)": bytes.fromhex(
        "055820adaf67a78a4bcc91e018f8882762a722000b2507039df0bc1bbf0c161bb3155c1820"
    ),
    "SALT_4e3m (Raw Value)": bytes.fromhex(
        "cfddf9515a7e46e7b4dbff31cbd56cd04ba332250de9ea5de1caf9f6d13914a7"
    ),
    "G_IY (Raw Value) (ECDH shared secret)": bytes.fromhex(
        "080f425085bc6249089eac8f108ea62326857e12ab07d72028ca1b5f36e004b3"
    ),
    "PRK_4e3m (Raw Value)": bytes.fromhex(
        "81cc8a298e357044e3c466bb5c0a1e507e01d49238aeba138df94635407c0ff7"
    ),
    "ID_CRED_I (CBOR Data Item)": bytes.fromhex("a104412b"),
    "CRED_I (CBOR Data Item)": bytes.fromhex(
        "a2027734322d35302d33312d46462d45462d33372d33322d333908a101a5010202412b2001215820"
        "ac75e9ece3e50bfc8ed60399889522405c47bf16df96660a41298cb4307f7eb62258206e5de61138"
        "8a4b8a8211334ac7d37ecb52a387d257e6db3c2a93df21ff3affc8"
    ),
    "EAD_3 (CBOR Sequence)": bytes.fromhex(""),
    "context_3 (CBOR Sequence)": bytes.fromhex(
        "a104412b5820adaf67a78a4bcc91e018f8882762a722000b2507039df0bc1bbf0c161bb3155ca202"
        "7734322d35302d33312d46462d45462d33372d33322d333908a101a5010202412b2001215820ac75"
        "e9ece3e50bfc8ed60399889522405c47bf16df96660a41298cb4307f7eb62258206e5de611388a4b"
        "8a8211334ac7d37ecb52a387d257e6db3c2a93df21ff3affc8"
    ),
    "context_3 (CBOR byte string)": bytes.fromhex(
        "5891a104412b5820adaf67a78a4bcc91e018f8882762a722000b2507039df0bc1bbf0c161bb3155c"
        "a2027734322d35302d33312d46462d45462d33372d33322d333908a101a5010202412b2001215820"
        "ac75e9ece3e50bfc8ed60399889522405c47bf16df96660a41298cb4307f7eb62258206e5de61138"
        "8a4b8a8211334ac7d37ecb52a387d257e6db3c2a93df21ff3affc8"
    ),
    "info for MAC_3 (CBOR Sequence)": bytes.fromhex(
        "065891a104412b5820adaf67a78a4bcc91e018f8882762a722000b2507039df0bc1bbf0c161bb315"
        "5ca2027734322d35302d33312d46462d45462d33372d33322d333908a101a5010202412b20012158"
        "20ac75e9ece3e50bfc8ed60399889522405c47bf16df96660a41298cb4307f7eb62258206e5de611"
        "388a4b8a8211334ac7d37ecb52a387d257e6db3c2a93df21ff3affc808"
    ),
    "MAC_3 (Raw Value)": bytes.fromhex("623c91df41e34c2f"),
    "MAC_3 (CBOR Data Item)": bytes.fromhex("48623c91df41e34c2f"),
    "Signature_or_MAC_3 (Raw Value)": bytes.fromhex("623c91df41e34c2f"),
    "Signature_or_MAC_3 (CBOR Data Item)": bytes.fromhex("48623c91df41e34c2f"),
    "PLAINTEXT_3 (CBOR Sequence)": bytes.fromhex("2b48623c91df41e34c2f"),
    "A_3 (CBOR Data Item)": bytes.fromhex(
        "8368456e637279707430405820adaf67a78a4bcc91e018f8882762a722000b2507039df0bc1bbf0c161bb3155c"
    ),
    "info for K_3 (CBOR Sequence)": bytes.fromhex(
        "035820adaf67a78a4bcc91e018f8882762a722000b2507039df0bc1bbf0c161bb3155c10"
    ),
    "K_3 (Raw Value)": bytes.fromhex("8e7a30042000f7900e8174131f75f3ed"),
    "info for IV_3 (CBOR Sequence)": bytes.fromhex(
        "045820adaf67a78a4bcc91e018f8882762a722000b2507039df0bc1bbf0c161bb3155c0d"
    ),
    "IV_3 (Raw Value)": bytes.fromhex("6d8300c1e23b56153ae70ee457"),
    "CIPHERTEXT_3 (Raw Value)": bytes.fromhex("e562097bc417dd5919485ac7891ffd90a9fc"),
    "message_3 (CBOR Sequence)": bytes.fromhex("52e562097bc417dd5919485ac7891ffd90a9fc"),
    "Input to calculate TH_4 (CBOR Sequence)": bytes.fromhex(
        "5820adaf67a78a4bcc91e018f8882762a722000b2507039df0bc1bbf0c161bb3155c2b48623c91df"
        "41e34c2fa2027734322d35302d33312d46462d45462d33372d33322d333908a101a5010202412b20"
        "01215820ac75e9ece3e50bfc8ed60399889522405c47bf16df96660a41298cb4307f7eb62258206e"
        "5de611388a4b8a8211334ac7d37ecb52a387d257e6db3c2a93df21ff3affc8"
    ),
    "TH_4 (Raw Value)": bytes.fromhex(
        "c902b1e3a4326c93c5551f5f3aa6c5ecc0246806765612e52b5d99e6059d6b6e"
    ),
    "TH_4 (CBOR Data Item)": bytes.fromhex(
        "5820c902b1e3a4326c93c5551f5f3aa6c5ecc0246806765612e52b5d99e6059d6b6e"
    ),
    "EAD_4 (CBOR Sequence)": bytes.fromhex(""),
    "PLAINTEXT_4 (CBOR Sequence)": bytes.fromhex(""),
    "A_4 (CBOR Data Item)": bytes.fromhex(
        "8368456e637279707430405820c902b1e3a4326c93c5551f5f3aa6c5ecc0246806765612e52b5d99e6059d6b6e"
    ),
    "info for K_4 (CBOR Sequence)": bytes.fromhex(
        "085820c902b1e3a4326c93c5551f5f3aa6c5ecc0246806765612e52b5d99e6059d6b6e10"
    ),
    "K_4 (Raw Value)": bytes.fromhex("d3c77872b6eeb508911bdbd308b2e6a0"),
    "info for IV_4 (CBOR Sequence)": bytes.fromhex(
        "095820c902b1e3a4326c93c5551f5f3aa6c5ecc0246806765612e52b5d99e6059d6b6e0d"
    ),
    "IV_4 (Raw Value)": bytes.fromhex("04ff0f44456e96e217853c3601"),
    "CIPHERTEXT_4": bytes.fromhex("28c966b7ca304f83"),
    "message_4 (CBOR Sequence)": bytes.fromhex("4828c966b7ca304f83"),
    "info for PRK_out (CBOR Sequence)": bytes.fromhex(
        "075820c902b1e3a4326c93c5551f5f3aa6c5ecc0246806765612e52b5d99e6059d6b6e1820"
    ),
    "PRK_out (Raw Value)": bytes.fromhex(
        "2c71afc1a9338a940bb3529ca734b886f30d1aba0b4dc51beeaeabdfea9ecbf8"
    ),
    "info for PRK_exporter (CBOR Sequence)": bytes.fromhex("0a401820"),
    "PRK_exporter (Raw Value)": bytes.fromhex(
        "e14d06699cee248c5a04bf9227bbcd4ce394de7dcb56db43555474171e6446db"
    ),
    "Client's OSCORE Sender ID (Raw Value)": bytes.fromhex("27"),
    "Server's OSCORE Sender ID (Raw Value)": bytes.fromhex("37"),
    "info for OSCORE Master Secret (CBOR Sequence)": bytes.fromhex("004010"),
    "OSCORE Master Secret (Raw Value)": bytes.fromhex("f9868f6a3aca78a05d1485b35030b162"),
    "info for OSCORE Master Salt (CBOR Sequence)": bytes.fromhex("014008"),
    "OSCORE Master Salt (Raw Value)": bytes.fromhex("ada24c7dbfc85eeb"),
    "context for KeyUpdate (Raw Value)": bytes.fromhex("a01158fdb820890cd6be169602b8bcea"),
    "context for KeyUpdate (CBOR Data Item)": bytes.fromhex("50a01158fdb820890cd6be169602b8bcea"),
    "PRK_out after KeyUpdate (Raw Value)": bytes.fromhex(
        "f979537743fe0bd6b9b141ddbd79656c52e6dc7c50ad807754d74d07e87d0d16"
    ),
    "PRK_exporter after KeyUpdate (Raw Value)": bytes.fromhex(
        "00fcf7db9b2ead73824e7e830363c805c296f902830fac23d86c359c752f0f17"
    ),
    "OSCORE Master Secret after KeyUpdate (Raw Value)": bytes.fromhex(
        "49f72fac02b4658bda21e2dac66fc374"
    ),
    "OSCORE Master Salt after KeyUpdate (Raw Value)": bytes.fromhex("dd8b24f2aa9b011a"),
}
# RFC 9529 §4: invalid message_1 encodings a compliant Responder rejects (section: hex).
INVALID_MESSAGE_1: dict[str, bytes] = {
    "4.1.1 surplus array": bytes.fromhex(
        "8403025820741a13d7ba048fbb615e94386aa3b61bea5b3d8f65f32620b749bee8d278efa90e"
    ),
    "4.1.2 surplus bstr of C_I": bytes.fromhex(
        "03025820741a13d7ba048fbb615e94386aa3b61bea5b3d8f65f32620b749bee8d278efa9410e"
    ),
    "4.1.3 surplus array of suite": bytes.fromhex(
        "0381025820741a13d7ba048fbb615e94386aa3b61bea5b3d8f65f32620b749bee8d278efa90e"
    ),
    "4.1.4 text G_X": bytes.fromhex(
        "0302782020616972207370656564206F66206120756E6C6164656E207377616C6C6F77200e"
    ),
    "4.2.1 G_X length for suite 24": bytes.fromhex(
        "03820218185820741a13d7ba048fbb615e94386aa3b61bea5b3d8f65f32620b749bee8d278efa90e"
    ),
    "4.2.2 x >= p": bytes.fromhex(
        "03025820ffffffff00000001000000000000000000000000ffffffffffffffffffffffff0e"
    ),
    "4.2.3 x not on P-256": bytes.fromhex(
        "03025820a04e73601df544a70ba7ea1e57030f7d4b4eb7f673924e58d54ca77a5e7d4d4a0e"
    ),
    "4.2.4 X25519 low order": bytes.fromhex(
        "03005820edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f0e"
    ),
    "4.2.6 G_X without leading zero": bytes.fromhex(
        "0302581fd9697725d23a688b12d1c7e0108a08c9f71a85a09c20814976ab21122248fc0e"
    ),
    "4.3.1 long encoding of METHOD": bytes.fromhex(
        "190003025820741a13d7ba048fbb615e94386aa3b61bea5b3d8f65f32620b749bee8d278efa90e"
    ),
    "4.3.2 indefinite-length SUITES_I": bytes.fromhex(
        "039f0602ff5820741a13d7ba048fbb615e94386aa3b61bea5b3d8f65f32620b749bee8d278efa90e"
    ),
}

# RFC 9529 §4.1.5: message_2 as two data items instead of one byte string.
INVALID_MESSAGE_2_TWO_ITEMS = bytes.fromhex(
    "58204197 01d7f00a26c2dc587a36dd752549f33763c893422c8ea0f955a13a4ff5d5"
    "4B9862a11de42a95d785386a".replace(" ", "")
)

# RFC 9529 §4.1.6, §4.1.7, §4.2.5: invalid PLAINTEXT_2.
INVALID_PLAINTEXT_2: dict[str, bytes] = {
    "4.1.6 surplus map of ID_CRED_R": bytes.fromhex("27a10442321048fa5efa2ebf920bf3"),
    "4.1.7 surplus bstr of ID_CRED_R": bytes.fromhex("2741324 8fa5efa2ebf920bf3".replace(" ", "")),
    "4.2.5 MAC shorter than 8 bytes": bytes.fromhex("273244fa5efa2e"),
}
